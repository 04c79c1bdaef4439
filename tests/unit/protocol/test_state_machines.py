"""Transitions of the coordinator, the participant and the arbiter."""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import partial

import pytest

from a6wire.messages import Decision, Done, DoneOutcome, Envelope, Outcome, Vote, VoteChoice
from a6wire.reasons import ReasonCode
from a6wire.signing import payload_digest, seal
from a6wire.verification import verify_signature
from registry.protocol import coordinator, participant
from registry.protocol.arbiter import decide, read_decision
from registry.protocol.constants import DECISION_GRACE_MS, PREPARE_RESEND_INTERVAL_MS
from registry.protocol.coordinator import CoordinatorPhase, CoordinatorState
from registry.protocol.effects import (
    AppendDecision,
    ApplyAbort,
    ApplyCommit,
    HoldIncoming,
    HoldOutgoing,
    Ignored,
    SendToInbox,
)
from registry.protocol.events import (
    DecisionRead,
    DoneReceived,
    PrepareReceived,
    Tick,
    VoteReceived,
)
from registry.protocol.participant import ParticipantPhase, ParticipantState
from tests.sim import factories

pytestmark = pytest.mark.unit

DIRECTORY = factories.directory_for(["CHE", "GHA", "JPN", "SGP"])
VERIFY = partial(verify_signature, directory=DIRECTORY)
TRANSFER_ID = uuid.UUID(int=42)
DEADLINE_MS = 60_000
PREPARE = factories.prepare(
    TRANSFER_ID, "CHE", ["GHA", "JPN"], [factories.block(1, 10)], factories.at(DEADLINE_MS)
)
DIGEST = payload_digest(PREPARE)
_ids = iter(range(1, 10_000))


def signed(payload: object, sender: str, key_party: str | None = None) -> Envelope:
    return seal(
        payload,  # type: ignore[arg-type]
        sender_party=sender,
        sent_at=factories.at(0),
        message_id=uuid.UUID(int=next(_ids)),
        private_key=factories.party_key(key_party or sender),
    )


def vote(party: str, choice: VoteChoice = VoteChoice.YES, digest: str = DIGEST) -> Envelope:
    reasons_ = ("NO_AUTHORISATION_IN_FORCE",) if choice is VoteChoice.NO else ()
    return signed(
        Vote(
            transfer_id=TRANSFER_ID,
            coordinator_party="CHE",
            prepare_digest=digest,
            vote=choice,
            reason_codes=reasons_,
        ),
        party,
    )


def done(party: str, outcome: DoneOutcome) -> Envelope:
    return signed(Done(transfer_id=TRANSFER_ID, coordinator_party="CHE", outcome=outcome), party)


def decision_read(decision: Decision, sender: str, key_party: str | None = None) -> DecisionRead:
    return read_decision(signed(decision, sender, key_party), VERIFY)


def commit_decision(
    votes: tuple[Envelope, ...], prepare: Envelope | str | None = "signed"
) -> Decision:
    return Decision(
        transfer_id=TRANSFER_ID,
        outcome=Outcome.COMMIT,
        decided_by="CHE",
        coordinator_party="CHE",
        participants=("GHA", "JPN"),
        prepare_digest=DIGEST,
        yes_votes=votes,
        # A COMMIT carries the coordinator's signed PREPARE: what moved, for every index.
        prepare=signed(PREPARE, "CHE") if prepare == "signed" else prepare,
    )


def abort_decision(by: str = "CHE", prepare: Envelope | None = None) -> Decision:
    return Decision(
        transfer_id=TRANSFER_ID,
        outcome=Outcome.ABORT,
        decided_by=by,
        coordinator_party="CHE",
        participants=("GHA", "JPN"),
        prepare_digest=DIGEST,
        prepare=prepare,
    )


def at(ms: int) -> datetime:
    return factories.at(ms)


def started() -> CoordinatorState:
    state, _ = coordinator.begin(PREPARE, (), at(0))
    return state


def all_yes() -> CoordinatorState:
    state = started()
    state, _ = coordinator.step(state, VoteReceived(vote("GHA")), at(10))
    state, _ = coordinator.step(state, VoteReceived(vote("JPN")), at(20))
    return state


# -- coordinator ---------------------------------------------------------------------


def test_begin_holds_the_blocks_and_sends_prepare_to_every_participant() -> None:
    state, effects = coordinator.begin(PREPARE, (), at(0))
    assert state.phase is CoordinatorPhase.PREPARING
    assert HoldOutgoing(PREPARE) in effects
    assert [e.party for e in effects if isinstance(e, SendToInbox)] == ["GHA", "JPN"]


def test_begin_refused_by_the_ledger_announces_nothing() -> None:
    state, effects = coordinator.begin(PREPARE, ("UNITS_NOT_AVAILABLE",), at(0))
    assert state.phase is CoordinatorPhase.ABORTED
    assert not state.announced
    assert not [e for e in effects if isinstance(e, SendToInbox | HoldOutgoing)]


def test_commit_is_appended_only_after_every_yes() -> None:
    state = started()
    state, effects = coordinator.step(state, VoteReceived(vote("GHA")), at(10))
    assert state.phase is CoordinatorPhase.PREPARING
    assert effects == []
    state, effects = coordinator.step(state, VoteReceived(vote("JPN")), at(20))
    assert state.phase is CoordinatorPhase.COMMIT_APPENDED
    [append] = [e for e in effects if isinstance(e, AppendDecision)]
    assert append.decision.outcome is Outcome.COMMIT
    assert {v.sender_party for v in append.decision.yes_votes} == {"GHA", "JPN"}


def test_a_no_vote_appends_abort() -> None:
    state, effects = coordinator.step(started(), VoteReceived(vote("GHA", VoteChoice.NO)), at(5))
    assert state.phase is CoordinatorPhase.ABORT_APPENDED
    assert any(
        isinstance(e, AppendDecision) and e.decision.outcome is Outcome.ABORT for e in effects
    )


def test_the_deadline_appends_abort() -> None:
    state, effects = coordinator.step(started(), Tick(), at(DEADLINE_MS))
    assert state.phase is CoordinatorPhase.ABORT_APPENDED
    assert isinstance(effects[0], AppendDecision)


def test_the_last_yes_after_the_deadline_aborts_instead_of_committing() -> None:
    state = started()
    state, _ = coordinator.step(state, VoteReceived(vote("GHA")), at(10))
    state, _effects = coordinator.step(state, VoteReceived(vote("JPN")), at(DEADLINE_MS))
    assert state.phase is CoordinatorPhase.ABORT_APPENDED


def test_duplicate_yes_changes_nothing() -> None:
    state = started()
    state, _ = coordinator.step(state, VoteReceived(vote("GHA")), at(10))
    again, effects = coordinator.step(state, VoteReceived(vote("GHA")), at(11))
    assert again == state
    assert isinstance(effects[0], Ignored)
    assert effects[0].reason_code == ReasonCode.DUPLICATE


def test_a_vote_from_a_non_participant_is_ignored() -> None:
    state = started()
    again, effects = coordinator.step(state, VoteReceived(vote("SGP")), at(10))
    assert again == state
    assert effects == [Ignored(TRANSFER_ID, coordinator.ROLE, ReasonCode.WRONG_ROLE, "SGP")]


def test_a_vote_for_another_prepare_is_ignored() -> None:
    state = started()
    again, effects = coordinator.step(state, VoteReceived(vote("GHA", digest="1" * 64)), at(10))
    assert again == state
    assert isinstance(effects[0], Ignored)


def test_committed_is_reported_only_after_reading_the_commit_back() -> None:
    state = all_yes()
    assert state.phase is CoordinatorPhase.COMMIT_APPENDED
    read = decision_read(commit_decision(state.yes_votes), "CHE")
    state, effects = coordinator.step(state, read, at(30))
    assert state.phase is CoordinatorPhase.COMMITTED
    assert ApplyCommit(TRANSFER_ID, "CHE", coordinator.ROLE) in effects


def test_a_participant_abort_that_wins_overrides_our_appended_commit() -> None:
    state = all_yes()
    prepare_envelope = signed(PREPARE, "CHE")
    read = decision_read(abort_decision("GHA", prepare_envelope), "GHA")
    assert read.refusal is None
    state, effects = coordinator.step(state, read, at(90_000))
    assert state.phase is CoordinatorPhase.ABORTED
    assert ApplyAbort(TRANSFER_ID, "CHE", coordinator.ROLE) in effects
    later, effects = coordinator.step(
        state, decision_read(commit_decision(all_yes().yes_votes), "CHE"), at(90_001)
    )
    assert later == state
    assert isinstance(effects[0], Ignored)


def test_completed_once_every_participant_is_done() -> None:
    state = all_yes()
    state, _ = coordinator.step(
        state, decision_read(commit_decision(state.yes_votes), "CHE"), at(30)
    )
    state, _ = coordinator.step(state, DoneReceived(done("GHA", DoneOutcome.COMMITTED)), at(40))
    assert state.phase is CoordinatorPhase.COMMITTED
    state, _ = coordinator.step(state, DoneReceived(done("JPN", DoneOutcome.COMMITTED)), at(41))
    assert state.phase is CoordinatorPhase.COMPLETED


def test_prepare_is_resent_to_silent_participants() -> None:
    state = started()
    state, _ = coordinator.step(state, VoteReceived(vote("GHA")), at(10))
    state, effects = coordinator.step(state, Tick(), at(PREPARE_RESEND_INTERVAL_MS))
    assert [e.party for e in effects if isinstance(e, SendToInbox)] == ["JPN"]


def test_coordinator_state_round_trips_through_json() -> None:
    state = all_yes()
    assert CoordinatorState.model_validate_json(state.model_dump_json()) == state


# -- participant ---------------------------------------------------------------------


def fresh(party: str = "GHA") -> ParticipantState:
    return participant.initial(party, TRANSFER_ID, "CHE")


def prepared() -> ParticipantState:
    state, _ = participant.step(fresh(), PrepareReceived(signed(PREPARE, "CHE")), at(10))
    return state


def test_prepare_accepted_holds_the_credit_and_votes_yes() -> None:
    state, effects = participant.step(fresh(), PrepareReceived(signed(PREPARE, "CHE")), at(10))
    assert state.phase is ParticipantPhase.PREPARED
    assert HoldIncoming(PREPARE) in effects
    [send] = [e for e in effects if isinstance(e, SendToInbox)]
    assert isinstance(send.payload, Vote)
    assert send.payload.vote is VoteChoice.YES


def test_prepare_refused_by_the_ledger_votes_no_with_its_reasons() -> None:
    event = PrepareReceived(signed(PREPARE, "CHE"), ("UNITS_ALREADY_HELD",))
    state, effects = participant.step(fresh(), event, at(10))
    assert state.phase is ParticipantPhase.REFUSED
    assert not [e for e in effects if isinstance(e, HoldIncoming)]
    [send] = [e for e in effects if isinstance(e, SendToInbox)]
    assert isinstance(send.payload, Vote)
    assert send.payload.reason_codes == ("UNITS_ALREADY_HELD",)


def test_prepare_past_its_deadline_is_refused() -> None:
    state, _ = participant.step(fresh(), PrepareReceived(signed(PREPARE, "CHE")), at(DEADLINE_MS))
    assert state.phase is ParticipantPhase.REFUSED
    assert ReasonCode.DEADLINE_PASSED in state.vote_reasons


def test_duplicate_prepare_repeats_the_vote_without_holding_again() -> None:
    state = prepared()
    again, effects = participant.step(state, PrepareReceived(signed(PREPARE, "CHE")), at(20))
    assert again == state
    assert not [e for e in effects if isinstance(e, HoldIncoming)]
    assert [type(e) for e in effects] == [SendToInbox]


def test_commit_is_applied_once_and_done_sent() -> None:
    state = prepared()
    read = decision_read(commit_decision((vote("GHA"), vote("JPN"))), "CHE")
    state, effects = participant.step(state, read, at(30))
    assert state.phase is ParticipantPhase.COMMITTED
    assert ApplyCommit(TRANSFER_ID, "CHE", participant.ROLE) in effects
    again, effects = participant.step(state, read, at(31))
    assert again == state
    assert not [e for e in effects if isinstance(e, ApplyCommit)]


def test_the_first_valid_decision_wins_and_later_ones_are_ignored() -> None:
    state = prepared()
    state, _ = participant.step(state, decision_read(abort_decision(), "CHE"), at(30))
    assert state.phase is ParticipantPhase.ABORTED
    read = decision_read(commit_decision((vote("GHA"), vote("JPN"))), "CHE")
    again, effects = participant.step(state, read, at(31))
    assert again == state
    assert effects[0] == Ignored(
        TRANSFER_ID, participant.ROLE, ReasonCode.DECISION_ALREADY_WON, "COMMIT"
    )


def test_a_commit_missing_a_yes_neither_wins_nor_blocks() -> None:
    state = prepared()
    forged_votes = (vote("GHA"), signed(vote("JPN").payload, "JPN", key_party="SGP"))
    read = decision_read(commit_decision(forged_votes), "CHE")
    assert read.refusal == ReasonCode.INVALID_VOTE_EVIDENCE
    state, _effects = participant.step(state, read, at(30))
    assert state.phase is ParticipantPhase.PREPARED
    state, _ = participant.step(state, decision_read(abort_decision(), "CHE"), at(31))
    assert state.phase is ParticipantPhase.ABORTED


def test_a_commit_signed_by_someone_else_does_not_count() -> None:
    read = decision_read(commit_decision((vote("GHA"), vote("JPN"))), "CHE", key_party="SGP")
    assert read.refusal == "BAD_SIGNATURE"
    assert decide(None, read) is None


def test_a_commit_without_its_signed_prepare_does_not_count() -> None:
    votes = (vote("GHA"), vote("JPN"))
    assert decision_read(commit_decision(votes), "CHE").refusal is None
    missing = decision_read(commit_decision(votes, prepare=None), "CHE")
    assert missing.refusal == ReasonCode.INVALID_PREPARE_EVIDENCE
    # Signed by another member, or another PREPARE than the one the votes answer.
    forged = decision_read(commit_decision(votes, prepare=signed(PREPARE, "SGP")), "CHE")
    assert forged.refusal == ReasonCode.INVALID_PREPARE_EVIDENCE
    other = factories.prepare(
        TRANSFER_ID, "CHE", ["GHA", "JPN"], [factories.block(1, 11)], factories.at(DEADLINE_MS)
    )
    mismatched = decision_read(commit_decision(votes, prepare=signed(other, "CHE")), "CHE")
    assert mismatched.refusal == ReasonCode.INVALID_PREPARE_EVIDENCE
    assert decide(None, missing) is None


def test_an_abort_by_a_non_participant_does_not_count() -> None:
    fake_prepare = signed(PREPARE, "SGP")
    decision = Decision(
        transfer_id=TRANSFER_ID,
        outcome=Outcome.ABORT,
        decided_by="SGP",
        coordinator_party="CHE",
        participants=("GHA", "JPN", "SGP"),
        prepare_digest=DIGEST,
        prepare=fake_prepare,
    )
    assert decision_read(decision, "SGP").refusal == ReasonCode.INVALID_PREPARE_EVIDENCE


def test_a_yes_voter_aborts_itself_after_deadline_plus_grace() -> None:
    state = prepared()
    state, effects = participant.step(state, Tick(), at(DEADLINE_MS + DECISION_GRACE_MS - 1))
    assert effects == []
    state, effects = participant.step(state, Tick(), at(DEADLINE_MS + DECISION_GRACE_MS))
    [append] = effects
    assert isinstance(append, AppendDecision)
    assert append.decision.decided_by == "GHA"
    assert decision_read(append.decision, "GHA").refusal is None
    _again, effects = participant.step(state, Tick(), at(DEADLINE_MS + DECISION_GRACE_MS + 1))
    assert effects == []


def test_a_decision_before_the_prepare_refuses_the_late_prepare_at_once() -> None:
    state, _ = participant.step(fresh(), decision_read(abort_decision(), "CHE"), at(5))
    assert state.phase is ParticipantPhase.ABORTED
    state, effects = participant.step(state, PrepareReceived(signed(PREPARE, "CHE")), at(6))
    assert state.phase is ParticipantPhase.ABORTED
    assert not [e for e in effects if isinstance(e, HoldIncoming)]
    [send] = effects
    assert isinstance(send, SendToInbox)
    assert isinstance(send.payload, Done)
    assert send.payload.outcome is DoneOutcome.ABORTED


def test_a_decision_not_naming_this_node_is_not_kept() -> None:
    state, effects = participant.step(fresh("SGP"), decision_read(abort_decision(), "CHE"), at(5))
    assert state.phase is ParticipantPhase.UNKNOWN
    assert isinstance(effects[0], Ignored)


def test_participant_state_round_trips_through_json() -> None:
    state = prepared()
    assert ParticipantState.model_validate_json(state.model_dump_json()) == state
