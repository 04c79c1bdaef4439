"""The pure, sans-IO state machines of a cross-border transfer.

Inputs are verified envelopes, the time (``now``, passed in) and the node's
ledger answers as plain values; outputs are a new immutable state and a list of
effects (``registry.protocol.effects``) that the edge performs in one local
transaction. Nothing here does I/O or imports the ledger domain, so the same
code runs behind FastStream, in unit tests and in the seeded simulator.

- ``coordinator.begin`` / ``coordinator.step``: the transferring Party's side.
- ``participant.initial`` / ``participant.step``: a voting Party's side.
- ``arbiter``: the decision topic's rule, the first valid record per transfer wins.
"""

from registry.protocol.arbiter import (
    Arbiter,
    EnvelopeVerifier,
    TransferKey,
    decide,
    decision_refusal,
    names_party,
    read_decision,
    transfer_key,
)
from registry.protocol.coordinator import CoordinatorPhase, CoordinatorState
from registry.protocol.effects import (
    AppendDecision,
    ApplyAbort,
    ApplyCommit,
    Effect,
    HoldIncoming,
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
from registry.protocol.participant import ParticipantPhase, ParticipantState

__all__ = [
    "AppendDecision",
    "ApplyAbort",
    "ApplyCommit",
    "Arbiter",
    "CoordinatorPhase",
    "CoordinatorState",
    "DecisionRead",
    "DoneReceived",
    "Effect",
    "EnvelopeVerifier",
    "Event",
    "HoldIncoming",
    "HoldOutgoing",
    "Ignored",
    "ParticipantPhase",
    "ParticipantState",
    "PrepareReceived",
    "Report",
    "Role",
    "SendToInbox",
    "Tick",
    "TransferKey",
    "VoteReceived",
    "decide",
    "decision_refusal",
    "names_party",
    "read_decision",
    "transfer_key",
]
