"""The six invariants of PROTOCOL.md, checked against the simulated federation.

The checker trusts nothing the nodes computed about each other: the expected
winner of a transfer is recomputed from the decision log using the simulator's
own knowledge of which records honest nodes wrote.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from a6wire.messages import Decision, Outcome
from a6wire.verification import decode_envelope
from registry.protocol.arbiter import TransferKey
from registry.protocol.coordinator import CoordinatorState
from registry.protocol.participant import ParticipantPhase, ParticipantState

if TYPE_CHECKING:
    from tests.sim.world import Simulation

VIOLATIONS_KEPT_MAX = 20


def _violate(sim: Simulation, invariant: str, detail: str) -> None:
    if len(sim.violations) < VIOLATIONS_KEPT_MAX:
        sim.violations.append(f"{invariant}: {detail} (t={sim.time_ms}ms)")


def check_continuously(sim: Simulation) -> None:
    """After every local transaction: no serial spendable in two registries at
    once (invariant 4) and no transfer applied twice at one node (2 and 4)."""
    seen: dict[int, str] = {}
    for party, node in sim.nodes.items():
        ledger = node.durable.ledger
        for serial, unit in ledger.holdings.items():
            if unit.locked_by is not None:
                continue  # reserved for a pending debit, not spendable
            if serial in seen:
                _violate(sim, "NO_DOUBLE_HOLDING", f"serial {serial} at {seen[serial]} and {party}")
            seen[serial] = party
        applied: dict[TransferKey, int] = {}
        for key, _, _ in ledger.journal:
            applied[key] = applied.get(key, 0) + 1
            if applied[key] > 1:
                _violate(sim, "APPLIED_ONCE", f"{party} applied {key.transfer_id} twice")


def expected_winner(sim: Simulation, key: TransferKey) -> Outcome | None:
    """The first record an honest node appended for the transfer, in log order."""
    for record in sim.decision_log:
        if not record.genuine:
            continue
        envelope = decode_envelope(record.data)
        decision = envelope.payload
        if (
            isinstance(decision, Decision)
            and envelope.transfer_id == key.transfer_id
            and decision.coordinator_party == key.coordinator_party
        ):
            return decision.outcome
    return None


def _is_final(state: CoordinatorState | ParticipantState) -> bool:
    if isinstance(state, CoordinatorState):
        return state.is_decided
    return state.is_final


def check_termination(sim: Simulation) -> None:
    """Invariant 5: at the horizon every live node has finished every transfer."""
    for party, node in sim.nodes.items():
        if not node.up:
            continue
        for key, state in node.durable.states.items():
            if key in sim.transfers and not _is_final(state):
                _violate(sim, "TERMINATION", f"{party} still {state.phase} for {key.transfer_id}")


def _check_conservation(sim: Simulation) -> None:
    """Invariant 1 at the quiescent end: every issued serial in exactly one place."""
    holders: dict[int, list[str]] = {serial: [] for serial in sim.issued}
    for party, node in sim.nodes.items():
        ledger = node.durable.ledger
        for serial, unit in ledger.holdings.items():
            if unit.locked_by is not None:
                _violate(sim, "CONSERVATION", f"serial {serial} still locked at {party}")
            holders.setdefault(serial, []).append(party)
        for key in ledger.pending_debits:
            _violate(sim, "CONSERVATION", f"pending debit left at {party} for {key.transfer_id}")
        for key in ledger.pending_credits:
            _violate(sim, "CONSERVATION", f"pending credit left at {party} for {key.transfer_id}")
        for anomaly in ledger.anomalies:
            _violate(sim, "ATOMICITY", f"{party}: {anomaly}")
    for serial, parties in sorted(holders.items()):
        if len(parties) != 1:
            _violate(sim, "CONSERVATION", f"serial {serial} held by {parties or 'nobody'}")


def _check_atomicity(sim: Simulation) -> dict[TransferKey, Outcome | None]:
    """Invariants 2 and 4: every node applied the log's first honest record, once."""
    outcomes: dict[TransferKey, Outcome | None] = {}
    for key in sim.transfers:
        expected = expected_winner(sim, key)
        outcomes[key] = expected
        for party, node in sim.nodes.items():
            state = node.durable.states.get(key)
            if state is None:
                continue
            if not _is_final(state):
                _violate(sim, "TERMINATION", f"{party} never finished {key.transfer_id}")
            if isinstance(state, CoordinatorState):
                if state.announced and expected is None:
                    _violate(sim, "TERMINATION", f"no decision for {key.transfer_id}")
                if state.announced and state.outcome is not expected:
                    _violate(sim, "ATOMICITY", f"{party} {state.outcome} but log says {expected}")
            elif state.phase in (ParticipantPhase.COMMITTED, ParticipantPhase.ABORTED):
                applied = (
                    Outcome.COMMIT if state.phase is ParticipantPhase.COMMITTED else (Outcome.ABORT)
                )
                if applied is not expected:
                    _violate(sim, "ATOMICITY", f"{party} {applied} but log says {expected}")
            for journal_key, outcome, _ in node.durable.ledger.journal:
                if journal_key == key and outcome != (expected and expected.value):
                    _violate(sim, "ATOMICITY", f"{party} applied {outcome}, log says {expected}")
    return outcomes


def _check_adjustments(sim: Simulation, outcomes: dict[TransferKey, Outcome | None]) -> None:
    """Invariant 3: a committed first transfer records the transferring Party's
    adjustment for exactly its first-transfer serials; an abort records none."""
    recorded: dict[TransferKey, list[int]] = {}
    by_serial: dict[int, int] = {}
    for party, node in sim.nodes.items():
        for key, serial in node.durable.ledger.adjustments:
            if party != key.coordinator_party:
                _violate(sim, "CORRESPONDING_ADJUSTMENT", f"{party} adjusted for another Party")
            recorded.setdefault(key, []).append(serial)
            by_serial[serial] = by_serial.get(serial, 0) + 1
    for serial, count in by_serial.items():
        if count > 1:
            _violate(sim, "CORRESPONDING_ADJUSTMENT", f"serial {serial} adjusted {count} times")
    for key, truth in sim.transfers.items():
        committed = outcomes.get(key) is Outcome.COMMIT
        first = sorted(
            serial
            for block in truth.prepare.blocks
            if not block.first_transfer_done
            for serial in range(block.first_serial, block.last_serial + 1)
        )
        expected = first if committed else []
        if sorted(recorded.get(key, [])) != expected:
            _violate(sim, "CORRESPONDING_ADJUSTMENT", f"{key.transfer_id}: {recorded.get(key)}")


def _check_sovereignty(sim: Simulation) -> None:
    """Invariant 6: a forged message never reaches any ledger."""
    genuine = {key.transfer_id for key in sim.transfers}
    for party, node in sim.nodes.items():
        ledger = node.durable.ledger
        touched = [key for key, _, _ in ledger.journal]
        touched += list(ledger.pending_credits) + list(ledger.pending_debits)
        touched += [key for key, _ in ledger.adjustments]
        for key in touched:
            if key.transfer_id in sim.forged_transfer_ids or key not in sim.transfers:
                _violate(sim, "SOVEREIGNTY", f"{party} ledger touched by forged {key}")
        for key, state in node.durable.states.items():
            if (
                key.transfer_id not in genuine
                and isinstance(state, ParticipantState)
                and state.phase in (ParticipantPhase.PREPARED, ParticipantPhase.COMMITTED)
            ):
                _violate(sim, "SOVEREIGNTY", f"{party} acted on forged {key}")


def check_final(sim: Simulation) -> None:
    check_continuously(sim)
    _check_conservation(sim)
    outcomes = _check_atomicity(sim)
    _check_adjustments(sim, outcomes)
    _check_sovereignty(sim)
