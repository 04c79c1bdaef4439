"""The coordinator's state machine: the transferring Party's side of one transfer.

PREPARING --all YES, before deadline--> COMMIT_APPENDED --reads its COMMIT winning--> COMMITTED
PREPARING --a NO, or the deadline-----> ABORT_APPENDED  --reads an ABORT winning---> ABORTED
any non-final phase --reads a valid ABORT winning (e.g. a participant's)--> ABORTED
COMMITTED / ABORTED --DONE from every participant--> COMPLETED

The coordinator never reports COMMITTED on its own say-so: only the decision
topic decides, and it reports COMMITTED after reading the winning record back.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from a6wire.errors import WrongRoleError
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
from a6wire.verification import check_sender_role
from registry.protocol.arbiter import decide
from registry.protocol.constants import PREPARE_RESEND_COUNT_MAX, PREPARE_RESEND_INTERVAL
from registry.protocol.effects import (
    AppendDecision,
    ApplyAbort,
    ApplyCommit,
    Effect,
    HoldOutgoing,
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

ROLE = Role.COORDINATOR


class CoordinatorPhase(StrEnum):
    PREPARING = "PREPARING"
    COMMIT_APPENDED = "COMMIT_APPENDED"
    ABORT_APPENDED = "ABORT_APPENDED"
    COMMITTED = "COMMITTED"
    ABORTED = "ABORTED"
    COMPLETED = "COMPLETED"


DECIDED_PHASES = frozenset(
    {CoordinatorPhase.COMMITTED, CoordinatorPhase.ABORTED, CoordinatorPhase.COMPLETED}
)


class CoordinatorState(BaseModel):
    """Everything the coordinator knows of one transfer; persisted as JSON.

    ``yes_votes`` keeps the participants' signed vote envelopes because the
    COMMIT must carry them. ``announced`` is False for a transfer refused by the
    node's own ledger before any PREPARE left, which therefore holds nothing.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    transfer_id: UUID
    party: str
    phase: CoordinatorPhase
    prepare: Prepare
    prepare_digest: str
    announced: bool
    yes_votes: tuple[Envelope, ...] = ()
    abort_reasons: tuple[str, ...] = ()
    winner: Envelope | None = None
    done_from: tuple[str, ...] = ()
    prepare_sent_at: datetime
    prepare_resend_count: int = 0

    @property
    def is_decided(self) -> bool:
        return self.phase in DECIDED_PHASES

    @property
    def outcome(self) -> Outcome | None:
        """The outcome this node applied, once decided."""
        if not self.is_decided:
            return None
        if self.winner is not None and isinstance(self.winner.payload, Decision):
            return self.winner.payload.outcome
        return Outcome.COMMIT if self.phase is CoordinatorPhase.COMMITTED else Outcome.ABORT


Step = tuple[CoordinatorState, list[Effect]]


def begin(prepare: Prepare, ledger_refusals: tuple[str, ...], now: datetime) -> Step:
    """Start a transfer the API asked for, after the node's ledger checked it.

    The PREPARE and the hold on the blocks are effects of one transaction, so a
    crash cannot leave blocks reserved for a transfer nobody was told about.
    """
    refusals = ledger_refusals or ((ReasonCode.DEADLINE_PASSED,) if prepare.deadline <= now else ())
    state = CoordinatorState(
        transfer_id=prepare.transfer_id,
        party=prepare.coordinator_party,
        phase=CoordinatorPhase.ABORTED if refusals else CoordinatorPhase.PREPARING,
        prepare=prepare,
        prepare_digest=payload_digest(prepare),
        announced=not refusals,
        abort_reasons=tuple(refusals),
        prepare_sent_at=now,
    )
    if refusals:
        return state, [Report(prepare.transfer_id, ROLE, state.phase)]
    effects: list[Effect] = [HoldOutgoing(prepare)]
    effects += [SendToInbox(party, prepare) for party in prepare.participants]
    effects.append(Report(prepare.transfer_id, ROLE, state.phase))
    return state, effects


def step(state: CoordinatorState, event: Event, now: datetime) -> Step:
    """One transition. Messages that do not fit are ignored and reported."""
    if isinstance(event, VoteReceived):
        return _on_vote(state, event.envelope, now)
    if isinstance(event, DecisionRead):
        return _on_decision(state, event)
    if isinstance(event, DoneReceived):
        return _on_done(state, event.envelope)
    if isinstance(event, Tick):
        return _on_tick(state, now)
    if isinstance(event, PrepareReceived):
        return _ignore(state, ReasonCode.WRONG_ROLE, "a coordinator receives no PREPARE")
    raise TypeError(f"unknown event {event!r}")


def next_wake(state: CoordinatorState) -> datetime | None:
    """When the edge should next deliver a Tick, or None if no timer is needed."""
    if state.phase is CoordinatorPhase.PREPARING:
        return min(state.prepare.deadline, state.prepare_sent_at + PREPARE_RESEND_INTERVAL)
    if _awaiting_done(state):
        return state.prepare_sent_at + PREPARE_RESEND_INTERVAL
    return None


def _ignore(state: CoordinatorState, reason_code: str, detail: str = "") -> Step:
    return state, [Ignored(state.transfer_id, ROLE, reason_code, detail)]


def _belongs(state: CoordinatorState, envelope: Envelope) -> str | None:
    if envelope.transfer_id != state.transfer_id:
        return ReasonCode.OTHER_TRANSFER
    try:
        check_sender_role(envelope, state.party, state.prepare.participants)
    except WrongRoleError:
        return ReasonCode.WRONG_ROLE
    return None


def _append(state: CoordinatorState, outcome: Outcome, abort_reasons: tuple[str, ...]) -> Step:
    decision = Decision(
        transfer_id=state.transfer_id,
        outcome=outcome,
        decided_by=state.party,
        coordinator_party=state.party,
        participants=state.prepare.participants,
        prepare_digest=state.prepare_digest,
        yes_votes=state.yes_votes if outcome is Outcome.COMMIT else (),
        reason_codes=abort_reasons,
    )
    phase = (
        CoordinatorPhase.COMMIT_APPENDED
        if outcome is Outcome.COMMIT
        else CoordinatorPhase.ABORT_APPENDED
    )
    new_state = state.model_copy(update={"phase": phase, "abort_reasons": abort_reasons})
    evidence = state.prepare if outcome is Outcome.COMMIT else None
    return new_state, [
        AppendDecision(decision, evidence),
        Report(state.transfer_id, ROLE, phase),
    ]


def _on_vote(state: CoordinatorState, envelope: Envelope, now: datetime) -> Step:
    vote = envelope.payload
    if not isinstance(vote, Vote):
        return _ignore(state, ReasonCode.NOT_EXPECTED_IN_STATE, "not a VOTE")
    mismatch = _belongs(state, envelope)
    if mismatch is not None:
        return _ignore(state, mismatch, envelope.sender_party)
    if vote.prepare_digest != state.prepare_digest:
        return _ignore(state, ReasonCode.PREPARE_DIGEST_MISMATCH, envelope.sender_party)
    if state.phase is not CoordinatorPhase.PREPARING:
        return _ignore(state, ReasonCode.NOT_EXPECTED_IN_STATE, f"VOTE in {state.phase}")
    if vote.vote is VoteChoice.NO:
        return _append(state, Outcome.ABORT, vote.reason_codes)
    if any(known.sender_party == envelope.sender_party for known in state.yes_votes):
        return _ignore(state, ReasonCode.DUPLICATE, f"YES from {envelope.sender_party}")
    yes_votes = tuple(sorted((*state.yes_votes, envelope), key=lambda known: known.sender_party))
    state = state.model_copy(update={"yes_votes": yes_votes})
    if len(yes_votes) < len(state.prepare.participants):
        return state, []
    # A COMMIT appended after the deadline would race every participant's own ABORT;
    # the rule only allows it before, by this node's clock.
    if now >= state.prepare.deadline:
        return _append(state, Outcome.ABORT, (ReasonCode.DEADLINE_PASSED,))
    return _append(state, Outcome.COMMIT, ())


def _completed_if_all_done(state: CoordinatorState, effects: list[Effect]) -> Step:
    if state.phase in (CoordinatorPhase.COMMITTED, CoordinatorPhase.ABORTED) and set(
        state.done_from
    ) >= set(state.prepare.participants):
        state = state.model_copy(update={"phase": CoordinatorPhase.COMPLETED})
        effects.append(Report(state.transfer_id, ROLE, state.phase))
    return state, effects


def _on_decision(state: CoordinatorState, read: DecisionRead) -> Step:
    record = read.record
    decision = record.payload
    if not isinstance(decision, Decision):
        return _ignore(state, ReasonCode.NOT_A_DECISION)
    if record.transfer_id != state.transfer_id or decision.coordinator_party != state.party:
        return _ignore(state, ReasonCode.OTHER_TRANSFER)
    if state.winner is not None:
        return _ignore(state, ReasonCode.DECISION_ALREADY_WON, decision.outcome)
    if not state.announced:
        return _ignore(state, ReasonCode.NOT_EXPECTED_IN_STATE, "transfer was never announced")
    winner = decide(state.winner, read)
    if winner is None:
        return _ignore(state, read.refusal or ReasonCode.NOT_A_DECISION, "decision does not count")
    # A valid COMMIT is the federation's decision whatever phase we are in (it
    # carries our own signature), so it is applied rather than second-guessed.
    outcome = decision.outcome
    phase = CoordinatorPhase.COMMITTED if outcome is Outcome.COMMIT else CoordinatorPhase.ABORTED
    apply: Effect = (
        ApplyCommit(state.transfer_id, state.party, ROLE)
        if outcome is Outcome.COMMIT
        else ApplyAbort(state.transfer_id, state.party, ROLE)
    )
    state = state.model_copy(update={"winner": winner, "phase": phase})
    return _completed_if_all_done(state, [apply, Report(state.transfer_id, ROLE, phase)])


def _on_done(state: CoordinatorState, envelope: Envelope) -> Step:
    done = envelope.payload
    if not isinstance(done, Done):
        return _ignore(state, ReasonCode.NOT_EXPECTED_IN_STATE, "not a DONE")
    mismatch = _belongs(state, envelope)
    if mismatch is not None:
        return _ignore(state, mismatch, envelope.sender_party)
    if envelope.sender_party in state.done_from:
        return _ignore(state, ReasonCode.DUPLICATE, f"DONE from {envelope.sender_party}")
    expected = {
        CoordinatorPhase.COMMITTED: DoneOutcome.COMMITTED,
        CoordinatorPhase.ABORTED: DoneOutcome.ABORTED,
    }.get(state.phase)
    if expected is not None and done.outcome is not expected:
        return _ignore(
            state, ReasonCode.OUTCOME_MISMATCH, f"{envelope.sender_party} {done.outcome}"
        )
    if state.phase is CoordinatorPhase.COMPLETED or not state.announced:
        return _ignore(state, ReasonCode.NOT_EXPECTED_IN_STATE, f"DONE in {state.phase}")
    # A DONE can overtake our own reading of the decision; keep it for later.
    state = state.model_copy(
        update={"done_from": tuple(sorted((*state.done_from, envelope.sender_party)))}
    )
    return _completed_if_all_done(state, [])


def _awaiting_done(state: CoordinatorState) -> bool:
    return (
        state.phase in (CoordinatorPhase.COMMITTED, CoordinatorPhase.ABORTED)
        and state.announced
        and state.prepare_resend_count < PREPARE_RESEND_COUNT_MAX
    )


def _resend(state: CoordinatorState, now: datetime, waiting_for: list[str]) -> Step:
    if (
        not waiting_for
        or state.prepare_resend_count >= PREPARE_RESEND_COUNT_MAX
        or now < state.prepare_sent_at + PREPARE_RESEND_INTERVAL
    ):
        return state, []
    # A participant answers a repeated PREPARE with its vote, or with DONE once it
    # has applied the decision, so one message serves both purposes.
    state = state.model_copy(
        update={"prepare_sent_at": now, "prepare_resend_count": state.prepare_resend_count + 1}
    )
    return state, [SendToInbox(party, state.prepare) for party in waiting_for]


def _on_tick(state: CoordinatorState, now: datetime) -> Step:
    if state.phase is CoordinatorPhase.PREPARING:
        if now >= state.prepare.deadline:
            return _append(state, Outcome.ABORT, (ReasonCode.DEADLINE_PASSED,))
        voted = {vote.sender_party for vote in state.yes_votes}
        return _resend(state, now, [p for p in state.prepare.participants if p not in voted])
    if _awaiting_done(state):
        done = set(state.done_from)
        return _resend(state, now, [p for p in state.prepare.participants if p not in done])
    return state, []
