"""Deliberately broken nodes, to prove the checker can fail.

Each variant swaps one plausible mistake into the production code the
simulator runs (a protocol step the service calls, or the edge's checks); the
campaign in ``test_broken_variants_are_caught`` must report violations for
every one.
"""

from __future__ import annotations

from datetime import datetime

from a6wire.messages import Decision, Envelope
from registry.adapters.in_memory import InMemoryStore
from registry.adapters.transfer_unit_of_work import (
    InMemoryDecisionRepository,
    InMemoryTransferStore,
)
from registry.adapters.unit_index import UnitLogPublisher
from registry.application.custody import UnitIndex
from registry.application.transfers import MessagePosition
from registry.entrypoints.bus import TransferBus
from registry.protocol import coordinator, participant
from registry.protocol.arbiter import TransferKey
from registry.protocol.coordinator import CoordinatorPhase, CoordinatorState
from registry.protocol.effects import AppendDecision, ApplyCommit, Effect, Role
from registry.protocol.events import DecisionRead, Event
from registry.protocol.participant import ParticipantPhase, ParticipantState
from tests.sim.world import SimUnitOfWork, Variant


def _last_decision_wins(
    state: ParticipantState, event: Event, now: datetime
) -> tuple[ParticipantState, list[Effect]]:
    """A participant that lets every later valid record overwrite the winner (with
    ``_LastWinsUnitOfWork``, whose decision table does the same at the service)."""
    if isinstance(event, DecisionRead) and event.refusal is None and state.winner is not None:
        held = state.prepare is not None and state.phase is not ParticipantPhase.REFUSED
        state = state.model_copy(
            update={
                "winner": None,
                "phase": ParticipantPhase.PREPARED if held else ParticipantPhase.UNKNOWN,
            }
        )
    return participant.step(state, event, now)


def _commit_before_readback(
    state: CoordinatorState, event: Event, now: datetime
) -> tuple[CoordinatorState, list[Effect]]:
    """A coordinator that treats its own COMMIT as decided when it appends it."""
    if state.phase is CoordinatorPhase.COMMITTED and state.winner is None:
        return state, []  # believes it is done; ignores what the log says
    new_state, effects = coordinator.step(state, event, now)
    if any(isinstance(e, AppendDecision) and e.decision.outcome == "COMMIT" for e in effects):
        new_state = new_state.model_copy(update={"phase": CoordinatorPhase.COMMITTED})
        effects.append(ApplyCommit(state.transfer_id, state.party, Role.COORDINATOR))
    return new_state, effects


class _ForgetfulDecisions(InMemoryDecisionRepository):
    """A decision table that keeps the latest valid record instead of the first."""

    def winner(self, key: TransferKey) -> Envelope | None:
        return None

    def keep(self, key: TransferKey, record: Envelope, read_at: datetime) -> None:
        self._store.decisions[key] = record


class _LastWinsUnitOfWork(SimUnitOfWork):
    def __init__(
        self,
        store: InMemoryStore | None = None,
        transfer_store: InMemoryTransferStore | None = None,
        *,
        unit_log: UnitLogPublisher | None = None,
    ) -> None:
        super().__init__(store, transfer_store, unit_log=unit_log)
        self.decisions = _ForgetfulDecisions(self)


class _IndexBlindToDecisions(UnitIndex):
    """A unit index that reads the decision topic but folds in no COMMIT: it believes
    every unit is still where it was issued."""

    def handle_decision_record(self, envelope: Envelope, position: MessagePosition) -> bool:
        self.skip(position)
        return False


class _UnverifiedBus(TransferBus):
    """An edge that decodes its records but never checks the sender or the signature."""

    def _check_inbox(self, envelope: Envelope) -> None:
        if isinstance(envelope.payload, Decision):
            super()._check_inbox(envelope)

    def _check_decision(self, envelope: Envelope) -> None:
        return None


VARIANTS: dict[str, Variant] = {
    "correct": Variant(),
    "last_decision_wins": Variant(
        name="last_decision_wins",
        participant_step=_last_decision_wins,
        unit_of_work_class=_LastWinsUnitOfWork,
    ),
    "commit_before_readback": Variant(
        name="commit_before_readback", coordinator_step=_commit_before_readback
    ),
    "accepts_unverified": Variant(
        name="accepts_unverified", bus_class=_UnverifiedBus, judge_decisions=False
    ),
    # Keeps its unit index but votes without asking it (PROTOCOL.md invariant 8 unbuilt):
    # caught only where hostile members are parties of the approach.
    "no_custody": Variant(name="no_custody", custody=False),
    "index_blind_to_decisions": Variant(
        name="index_blind_to_decisions", unit_index_class=_IndexBlindToDecisions
    ),
}
