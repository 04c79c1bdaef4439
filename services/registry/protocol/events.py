"""What a transition reacts to. Envelopes here have passed
``a6wire.verification.verify_envelope`` at the edge; decision records are judged
by the arbiter (``registry.protocol.arbiter.read_decision``) instead."""

from __future__ import annotations

from dataclasses import dataclass

from a6wire.messages import Envelope


@dataclass(frozen=True, slots=True)
class PrepareReceived:
    """A PREPARE, with the reason codes the node's own ledger validation returned
    for it (empty: the ledger would accept the pending credit)."""

    envelope: Envelope
    ledger_refusals: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VoteReceived:
    envelope: Envelope


@dataclass(frozen=True, slots=True)
class DoneReceived:
    envelope: Envelope


@dataclass(frozen=True, slots=True)
class DecisionRead:
    """A record read from the decision topic, in partition order, with the
    arbiter's verdict: ``refusal`` is None when the record counts."""

    record: Envelope
    refusal: str | None


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed; deadlines and re-sends are checked against ``now``."""


Event = PrepareReceived | VoteReceived | DoneReceived | DecisionRead | Tick
