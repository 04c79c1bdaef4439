"""What a transition asks the edge to do, as plain data.

The edge performs every effect of one transition in the SAME local database
transaction as the new state: ledger effects (hold, apply) directly, messages
(``SendToInbox``, ``AppendDecision``) as outbox rows that a relay publishes
afterwards. ``Report`` and ``Ignored`` are for logs and metrics only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from a6wire.messages import Decision, Done, Prepare, Vote


class Role(StrEnum):
    COORDINATOR = "COORDINATOR"
    PARTICIPANT = "PARTICIPANT"


@dataclass(frozen=True, slots=True)
class SendToInbox:
    """Sign the payload and publish it to the Party's inbox topic (via the outbox)."""

    party: str
    payload: Prepare | Vote | Done


@dataclass(frozen=True, slots=True)
class AppendDecision:
    """Sign the decision and append it to the decision topic (via the outbox).

    ``evidence`` is the coordinator's PREPARE, for a COMMIT the coordinator writes:
    the edge signs it and embeds it in the decision (``Decision.prepare``), so that
    the decision topic alone tells which serial ranges moved between which Parties.
    """

    decision: Decision
    evidence: Prepare | None = None


@dataclass(frozen=True, slots=True)
class HoldOutgoing:
    """Coordinator: reserve the PREPARE's blocks in the from-account (pending debit)."""

    prepare: Prepare


@dataclass(frozen=True, slots=True)
class HoldIncoming:
    """Participant: record the pending credit the PREPARE announces (not yet held)."""

    prepare: Prepare


@dataclass(frozen=True, slots=True)
class ApplyCommit:
    """Finalise the hold: the coordinator debits (and records the first-transfer
    corresponding adjustment in the same transaction), a participant credits."""

    transfer_id: UUID
    coordinator_party: str
    role: Role


@dataclass(frozen=True, slots=True)
class ApplyAbort:
    """Release the hold, recording no corresponding adjustment."""

    transfer_id: UUID
    coordinator_party: str
    role: Role


@dataclass(frozen=True, slots=True)
class Report:
    """The transfer entered a new phase (e.g. tell the API caller COMMITTED)."""

    transfer_id: UUID
    role: Role
    phase: str


@dataclass(frozen=True, slots=True)
class Ignored:
    """A message did not fit the state and changed nothing; log it."""

    transfer_id: UUID
    role: Role
    reason_code: str
    detail: str = ""


Effect = (
    SendToInbox
    | AppendDecision
    | HoldOutgoing
    | HoldIncoming
    | ApplyCommit
    | ApplyAbort
    | Report
    | Ignored
)
