"""The decision arbiter: the first valid record per transfer in partition order wins.

Every node reads the same decision partition in the same order and applies the
same pure rule to it, so every node picks the same winner with no extra round
trip and no central node. Validity depends only on the record and the
federation directory (through the ``verify`` function passed in), never on
what a node happens to have seen, or nodes could disagree.

A transfer is identified by (transfer id, coordinator Party): the coordinator
chooses the id, and keying by both means a member that reuses someone else's
transfer id only ever decides its own transfer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple
from uuid import UUID

from a6wire.errors import WireError
from a6wire.messages import (
    Decision,
    Envelope,
    FirstTransferNotice,
    Outcome,
    Prepare,
    UnitRecord,
    Vote,
    VoteChoice,
)
from a6wire.reasons import ReasonCode
from a6wire.signing import payload_digest
from registry.protocol.events import DecisionRead

# Checks an envelope's sender and signature against the federation directory and
# raises ``a6wire.errors.WireError`` if it fails, e.g.
# ``functools.partial(a6wire.verification.verify_signature, directory=directory)``.
EnvelopeVerifier = Callable[[Envelope], None]


class TransferKey(NamedTuple):
    transfer_id: UUID
    coordinator_party: str


def transfer_key(record: Envelope) -> TransferKey:
    payload = record.payload
    if isinstance(payload, UnitRecord):
        raise TypeError("a unit record belongs to no transfer")
    # A notice belongs to no transfer; its sender is the only party it names.
    coordinator = (
        record.sender_party
        if isinstance(payload, FirstTransferNotice)
        else payload.coordinator_party
    )
    return TransferKey(record.transfer_id, coordinator)


def _verifies(envelope: Envelope, verify: EnvelopeVerifier) -> bool:
    try:
        verify(envelope)
    except WireError:
        return False
    return True


def _vote_refusal(decision: Decision, verify: EnvelopeVerifier) -> str | None:
    voters = sorted(vote.sender_party for vote in decision.yes_votes)
    if voters != sorted(decision.participants):
        return ReasonCode.MISSING_YES_VOTE
    for vote_envelope in decision.yes_votes:
        vote = vote_envelope.payload
        if not (
            isinstance(vote, Vote)
            and vote.vote is VoteChoice.YES
            and vote.transfer_id == decision.transfer_id
            and vote.coordinator_party == decision.coordinator_party
            and vote.prepare_digest == decision.prepare_digest
            and _verifies(vote_envelope, verify)
        ):
            return ReasonCode.INVALID_VOTE_EVIDENCE
    return None


def _prepare_refusal(decision: Decision, verify: EnvelopeVerifier) -> str | None:
    """The embedded PREPARE is the coordinator's, signed, and the one the digest names.

    A participant's ABORT carries it to show its writer is a participant; a
    COMMIT carries it so that the decision topic alone says what moved.
    """
    prepare_envelope = decision.prepare
    if prepare_envelope is None:
        return ReasonCode.INVALID_PREPARE_EVIDENCE
    prepare = prepare_envelope.payload
    if not (
        isinstance(prepare, Prepare)
        and prepare_envelope.sender_party == decision.coordinator_party
        and prepare.transfer_id == decision.transfer_id
        and prepare.coordinator_party == decision.coordinator_party
        and sorted(prepare.participants) == sorted(decision.participants)
        and decision.decided_by in (decision.coordinator_party, *prepare.participants)
        and payload_digest(prepare, prepare_envelope.schema_version) == decision.prepare_digest
        and _verifies(prepare_envelope, verify)
    ):
        return ReasonCode.INVALID_PREPARE_EVIDENCE
    return None


def decision_refusal(record: Envelope, verify: EnvelopeVerifier) -> str | None:
    """None if the record counts as a decision, else why it does not.

    A COMMIT counts only if signed by the transfer's coordinator and carrying
    every participant's signed YES for this very PREPARE, and that PREPARE
    itself, signed by the coordinator (its digest is the one the votes name); an ABORT counts if
    signed by the coordinator, or by a participant that shows the coordinator's
    signed PREPARE naming it.
    """
    decision = record.payload
    if not isinstance(decision, Decision):
        return ReasonCode.NOT_A_DECISION
    try:
        verify(record)
    except WireError as error:
        return error.reason_code
    if record.sender_party != decision.decided_by:
        return ReasonCode.WRONG_ROLE
    if decision.outcome is Outcome.COMMIT:
        if decision.decided_by != decision.coordinator_party:
            return ReasonCode.WRONG_ROLE
        return _vote_refusal(decision, verify) or _prepare_refusal(decision, verify)
    if decision.decided_by == decision.coordinator_party:
        return None
    return _prepare_refusal(decision, verify)


def read_decision(record: Envelope, verify: EnvelopeVerifier) -> DecisionRead:
    """Judge one record read from the decision topic, ready for ``step``."""
    return DecisionRead(record=record, refusal=decision_refusal(record, verify))


def decide(existing_winner: Envelope | None, read: DecisionRead) -> Envelope | None:
    """The winner after one more record of the same transfer, in partition order:
    once there is a winner nothing replaces it; an invalid record never wins."""
    if existing_winner is not None:
        return existing_winner
    if read.refusal is not None:
        return None
    return read.record


def names_party(record: Envelope, party: str) -> bool:
    """Whether a decision concerns this Party's node, which must then keep the
    winner even before it has seen the transfer's PREPARE."""
    decision = record.payload
    return isinstance(decision, Decision) and (
        party == decision.coordinator_party or party in decision.participants
    )


class Arbiter:
    """The rule bound to one federation directory's verifier, for the edge.

    It keeps no winners itself: the winner lives in each transfer's persisted
    state, so it survives a crash with that state.
    """

    def __init__(self, verify: EnvelopeVerifier) -> None:
        self._verify = verify

    def read(self, record: Envelope) -> DecisionRead:
        return read_decision(record, self._verify)

    def decide(self, existing_winner: Envelope | None, record: Envelope) -> Envelope | None:
        return decide(existing_winner, self.read(record))
