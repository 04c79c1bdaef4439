"""The participant's state machine: an acquiring (or otherwise voting) Party's side.

UNKNOWN --PREPARE, ledger agrees--> PREPARED (voted YES, pending credit held)
UNKNOWN --PREPARE, ledger refuses--> REFUSED (voted NO; nothing held; ends ABORTED)
UNKNOWN --valid ABORT naming us--> ABORTED (a late PREPARE is then refused at once)
PREPARED --COMMIT wins--> COMMITTED;  PREPARED/REFUSED --ABORT wins--> ABORTED
PREPARED, no decision by deadline + grace --> appends ABORT itself, stays PREPARED

UNKNOWN is the phase of a fresh record (``initial``); the edge persists a state
only once a transition leaves UNKNOWN.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from a6wire.messages import (
    Decision,
    Done,
    DoneOutcome,
    Envelope,
    Outcome,
    Prepare,
    Vote,
    VoteChoice,
)
from a6wire.reasons import ReasonCode
from a6wire.signing import payload_digest
from registry.protocol.arbiter import decide, names_party
from registry.protocol.constants import DECISION_GRACE, TRANSFER_DEADLINE_MAX
from registry.protocol.effects import (
    AppendDecision,
    ApplyAbort,
    ApplyCommit,
    Effect,
    HoldIncoming,
    Ignored,
    Report,
    Role,
    SendToInbox,
)
from registry.protocol.events import (
    DecisionRead,
    DoneReceived,
    Event,
    PrepareReceived,
    Tick,
    VoteReceived,
)

ROLE = Role.PARTICIPANT


class ParticipantPhase(StrEnum):
    UNKNOWN = "UNKNOWN"
    PREPARED = "PREPARED"
    REFUSED = "REFUSED"
    COMMITTED = "COMMITTED"
    ABORTED = "ABORTED"


# REFUSED is final for this node's ledger: it holds nothing, and no COMMIT can be
# valid without its YES. It still moves to ABORTED when it reads the decision.
FINAL_PHASES = frozenset(
    {ParticipantPhase.REFUSED, ParticipantPhase.COMMITTED, ParticipantPhase.ABORTED}
)


class ParticipantState(BaseModel):
    """Everything a participant knows of one transfer; persisted as JSON.

    ``prepare`` is the coordinator's signed PREPARE envelope, kept because this
    node's own ABORT must carry it as proof that it is a participant.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    transfer_id: UUID
    coordinator_party: str
    party: str
    phase: ParticipantPhase = ParticipantPhase.UNKNOWN
    prepare: Envelope | None = None
    prepare_digest: str | None = None
    vote_reasons: tuple[str, ...] = ()
    winner: Envelope | None = None
    abort_appended: bool = False

    @property
    def is_final(self) -> bool:
        return self.phase in FINAL_PHASES

    @property
    def prepare_payload(self) -> Prepare | None:
        if self.prepare is None:
            return None
        payload = self.prepare.payload
        return payload if isinstance(payload, Prepare) else None


Step = tuple[ParticipantState, list[Effect]]


def initial(party: str, transfer_id: UUID, coordinator_party: str) -> ParticipantState:
    """The record for a transfer this node has no state for yet."""
    return ParticipantState(
        transfer_id=transfer_id, coordinator_party=coordinator_party, party=party
    )


def step(state: ParticipantState, event: Event, now: datetime) -> Step:
    """One transition. Messages that do not fit are ignored and reported."""
    if isinstance(event, PrepareReceived):
        return _on_prepare(state, event, now)
    if isinstance(event, DecisionRead):
        return _on_decision(state, event)
    if isinstance(event, Tick):
        return _on_tick(state, now)
    if isinstance(event, VoteReceived | DoneReceived):
        return _ignore(state, ReasonCode.WRONG_ROLE, "a participant receives no VOTE or DONE")
    raise TypeError(f"unknown event {event!r}")


def next_wake(state: ParticipantState) -> datetime | None:
    """When the edge should next deliver a Tick, or None if no timer is needed."""
    prepare = state.prepare_payload
    if state.phase is ParticipantPhase.PREPARED and not state.abort_appended and prepare:
        return prepare.deadline + DECISION_GRACE
    return None


def _ignore(state: ParticipantState, reason_code: str, detail: str = "") -> Step:
    return state, [Ignored(state.transfer_id, ROLE, reason_code, detail)]


def _vote(state: ParticipantState, choice: VoteChoice, reasons_: tuple[str, ...]) -> SendToInbox:
    if state.prepare_digest is None:
        raise ValueError("a vote needs the PREPARE it answers")
    return SendToInbox(
        state.coordinator_party,
        Vote(
            transfer_id=state.transfer_id,
            coordinator_party=state.coordinator_party,
            prepare_digest=state.prepare_digest,
            vote=choice,
            reason_codes=reasons_,
        ),
    )


def _done(state: ParticipantState, outcome: DoneOutcome) -> SendToInbox:
    return SendToInbox(
        state.coordinator_party,
        Done(
            transfer_id=state.transfer_id,
            coordinator_party=state.coordinator_party,
            outcome=outcome,
        ),
    )


def _answer_again(state: ParticipantState, digest: str) -> Step:
    """A repeated PREPARE changes nothing; it is answered with what we said before."""
    if state.phase is ParticipantPhase.COMMITTED:
        return state, [_done(state, DoneOutcome.COMMITTED)]
    if state.phase is ParticipantPhase.ABORTED:
        return state, [_done(state, DoneOutcome.ABORTED)]
    if digest != state.prepare_digest:
        return _ignore(state, ReasonCode.CONFLICTING_PREPARE, "same transfer, other content")
    if state.phase is ParticipantPhase.PREPARED:
        return state, [_vote(state, VoteChoice.YES, ())]
    return state, [_vote(state, VoteChoice.NO, state.vote_reasons)]


def _refusals(prepare: Prepare, ledger_refusals: tuple[str, ...], now: datetime) -> tuple[str, ...]:
    refusals = list(ledger_refusals)
    if prepare.deadline <= now:
        refusals.append(ReasonCode.DEADLINE_PASSED)
    elif prepare.deadline - now > TRANSFER_DEADLINE_MAX:
        refusals.append(ReasonCode.DEADLINE_TOO_FAR)
    return tuple(dict.fromkeys(refusals))


def _on_prepare(state: ParticipantState, event: PrepareReceived, now: datetime) -> Step:
    envelope = event.envelope
    prepare = envelope.payload
    if not isinstance(prepare, Prepare):
        return _ignore(state, ReasonCode.NOT_EXPECTED_IN_STATE, "not a PREPARE")
    if (
        envelope.transfer_id != state.transfer_id
        or prepare.coordinator_party != state.coordinator_party
        or envelope.sender_party != state.coordinator_party
    ):
        return _ignore(state, ReasonCode.OTHER_TRANSFER)
    if state.party not in prepare.participants:
        return _ignore(state, ReasonCode.NOT_NAMED, "this node is not a participant")
    digest = payload_digest(prepare, envelope.schema_version)
    if state.phase is not ParticipantPhase.UNKNOWN:
        return _answer_again(state, digest)
    refusals = _refusals(prepare, event.ledger_refusals, now)
    phase = ParticipantPhase.REFUSED if refusals else ParticipantPhase.PREPARED
    state = state.model_copy(
        update={
            "phase": phase,
            "prepare": envelope,
            "prepare_digest": digest,
            "vote_reasons": refusals,
        }
    )
    if refusals:
        vote = _vote(state, VoteChoice.NO, refusals)
        return state, [vote, Report(state.transfer_id, ROLE, phase)]
    vote = _vote(state, VoteChoice.YES, ())
    return state, [HoldIncoming(prepare), vote, Report(state.transfer_id, ROLE, phase)]


def _on_decision(state: ParticipantState, read: DecisionRead) -> Step:
    record = read.record
    decision = record.payload
    if not isinstance(decision, Decision):
        return _ignore(state, ReasonCode.NOT_A_DECISION)
    if (
        record.transfer_id != state.transfer_id
        or decision.coordinator_party != state.coordinator_party
    ):
        return _ignore(state, ReasonCode.OTHER_TRANSFER)
    if state.winner is not None:
        return _ignore(state, ReasonCode.DECISION_ALREADY_WON, decision.outcome)
    winner = decide(state.winner, read)
    if winner is None:
        return _ignore(state, read.refusal or ReasonCode.NOT_A_DECISION, "decision does not count")
    if state.phase is ParticipantPhase.UNKNOWN:
        return _decided_before_prepare(state, winner, decision)
    if decision.outcome is Outcome.COMMIT:
        if state.phase is not ParticipantPhase.PREPARED:
            # Cannot be honest: a valid COMMIT carries our YES, which we never gave.
            return _ignore(state, ReasonCode.COMMIT_WITHOUT_LOCAL_YES, state.phase)
        state = state.model_copy(update={"winner": winner, "phase": ParticipantPhase.COMMITTED})
        apply: list[Effect] = [ApplyCommit(state.transfer_id, state.coordinator_party, ROLE)]
        done = _done(state, DoneOutcome.COMMITTED)
    else:
        held = state.phase is ParticipantPhase.PREPARED
        state = state.model_copy(update={"winner": winner, "phase": ParticipantPhase.ABORTED})
        apply = [ApplyAbort(state.transfer_id, state.coordinator_party, ROLE)] if held else []
        done = _done(state, DoneOutcome.ABORTED)
    return state, [*apply, done, Report(state.transfer_id, ROLE, state.phase)]


def _decided_before_prepare(state: ParticipantState, winner: Envelope, decision: Decision) -> Step:
    if not names_party(winner, state.party):
        return _ignore(state, ReasonCode.NOT_NAMED, "decision for a transfer not naming us")
    if decision.outcome is Outcome.COMMIT:
        return _ignore(state, ReasonCode.COMMIT_WITHOUT_LOCAL_YES, "COMMIT before any PREPARE")
    state = state.model_copy(update={"winner": winner, "phase": ParticipantPhase.ABORTED})
    return state, [Report(state.transfer_id, ROLE, state.phase)]


def _on_tick(state: ParticipantState, now: datetime) -> Step:
    prepare = state.prepare_payload
    if (
        state.phase is not ParticipantPhase.PREPARED
        or state.winner is not None
        or state.abort_appended
        or prepare is None
        or state.prepare_digest is None
        or now < prepare.deadline + DECISION_GRACE
    ):
        return state, []
    # We voted YES and the coordinator has gone quiet: without this ABORT the units
    # would stay pending here forever. The log decides whether it or a late COMMIT
    # wins; either way every node applies the same record.
    decision = Decision(
        transfer_id=state.transfer_id,
        outcome=Outcome.ABORT,
        decided_by=state.party,
        coordinator_party=state.coordinator_party,
        participants=prepare.participants,
        prepare_digest=state.prepare_digest,
        prepare=state.prepare,
        reason_codes=(ReasonCode.DECISION_TIMEOUT,),
    )
    state = state.model_copy(update={"abort_appended": True})
    return state, [AppendDecision(decision)]
