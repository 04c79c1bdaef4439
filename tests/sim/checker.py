"""The invariants of PROTOCOL.md, checked against the simulated federation.

The checker reads each honest node's real in-memory ledger (blocks,
reservations, corresponding adjustments) and its transfer table, and trusts
nothing the nodes computed about each other: the expected winner of a
transfer is recomputed from the decision log using the simulator's own
knowledge of which records honest nodes wrote. Only honest nodes are checked;
hostile members hold nothing from an honest registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from a6wire.messages import Decision, Outcome
from a6wire.reasons import ReasonCode
from a6wire.verification import decode_envelope
from registry.domain.blocks import PRESENT_STATUSES, BlockStatus
from registry.domain.custody import holdings_by_party
from registry.domain.transfers import ReservationState, TransferDirection
from registry.protocol.arbiter import TransferKey
from registry.protocol.coordinator import CoordinatorState
from registry.protocol.participant import ParticipantPhase, ParticipantState

if TYPE_CHECKING:
    from tests.sim.world import Node, Simulation

VIOLATIONS_KEPT_MAX = 20

Serial = tuple[str, int]  # (originating registry id, serial number)


def _serials(node: Node, statuses: frozenset[BlockStatus]) -> list[tuple[Serial, BlockStatus]]:
    return [
        ((block.attributes.originating_registry_id, serial), block.status)
        for block in node.blocks()
        if block.status in statuses
        for serial in range(block.first_serial, block.last_serial + 1)
    ]


_SPENDABLE = frozenset({BlockStatus.HELD})


def check_continuously(sim: Simulation) -> None:
    """After every event: no serial spendable in two registries at once (invariant 4)."""
    seen: dict[Serial, str] = {}
    for party, node in sim.nodes.items():
        for serial, _ in _serials(node, _SPENDABLE):
            if serial in seen:
                sim.violation(
                    "NO_DOUBLE_HOLDING", f"serial {serial} held at {seen[serial]} and {party}"
                )
            seen[serial] = party


def first_genuine_outcomes(sim: Simulation) -> dict[TransferKey, Outcome]:
    """Per transfer, the outcome of the first record an honest node appended, in log order."""
    outcomes: dict[TransferKey, Outcome] = {}
    for record in sim.decision_log:
        if not record.genuine:
            continue
        envelope = decode_envelope(record.data)
        decision = envelope.payload
        if isinstance(decision, Decision):
            key = TransferKey(envelope.transfer_id, decision.coordinator_party)
            outcomes.setdefault(key, decision.outcome)
    return outcomes


def expected_winner(sim: Simulation, key: TransferKey) -> Outcome | None:
    return first_genuine_outcomes(sim).get(key)


def _is_final(state: CoordinatorState | ParticipantState) -> bool:
    if isinstance(state, CoordinatorState):
        return state.is_decided
    return state.is_final


def check_termination(sim: Simulation) -> None:
    """Invariant 5: by deadline + grace + recovery every live node finished each honest transfer."""
    for party, node in sim.nodes.items():
        if not node.up:
            continue
        for key, record in node.transfer_store.transfers.items():
            if key in sim.transfers and record.state is not None and not _is_final(record.state):
                sim.violation("TERMINATION", f"{party} still {record.phase} for {_name(key)}")


def _name(key: TransferKey) -> str:
    return f"{key.coordinator_party}:{key.transfer_id}"


def _check_conservation(sim: Simulation) -> None:
    """Invariant 1 at the quiescent end: every issued serial held in exactly one place."""
    holders: dict[Serial, list[str]] = {serial: [] for serial in sim.issued}
    for party, node in sim.nodes.items():
        for serial, status in _serials(node, PRESENT_STATUSES):
            if serial not in sim.issued:
                sim.violation(
                    "CONSERVATION", f"{party} holds {serial}, which no honest registry issued"
                )
                continue
            holders[serial].append(party)
            if status is not BlockStatus.HELD:
                sim.violation("CONSERVATION", f"serial {serial} still {status} at {party}")
        for reservation in node.store.reservations.values():
            if reservation.state is ReservationState.PENDING:
                sim.violation(
                    "CONSERVATION",
                    f"{party} {reservation.direction} {reservation.transfer_id} still pending",
                )
    for serial, parties in sorted(holders.items()):
        if len(parties) != 1:
            sim.violation("CONSERVATION", f"serial {serial} held by {parties or 'nobody'}")


_APPLIED = {Outcome.COMMIT: ReservationState.FINALISED, Outcome.ABORT: ReservationState.RELEASED}


def _check_atomicity(sim: Simulation, outcomes: dict[TransferKey, Outcome]) -> None:
    """Invariant 2: every honest node applied the log's first honest record, in its
    protocol state and in its ledger."""
    for key, truth in sim.transfers.items():
        expected = outcomes.get(key)
        name = _name(key)
        for party, node in sim.nodes.items():
            record = node.transfer_store.transfers.get(key)
            state = record.state if record is not None else None
            if state is None:
                continue
            if not _is_final(state):
                sim.violation("TERMINATION", f"{party} never finished {name}")
            if isinstance(state, CoordinatorState):
                if state.announced and expected is None:
                    sim.violation("TERMINATION", f"no honest decision for {name}")
                if state.announced and state.outcome is not expected:
                    sim.violation(
                        "ATOMICITY", f"{party} {state.outcome} but log says {expected} for {name}"
                    )
            elif state.phase in (ParticipantPhase.COMMITTED, ParticipantPhase.ABORTED):
                applied = (
                    Outcome.COMMIT if state.phase is ParticipantPhase.COMMITTED else Outcome.ABORT
                )
                if applied is not expected:
                    sim.violation(
                        "ATOMICITY", f"{party} {applied} but log says {expected} for {name}"
                    )
        # The ledgers: the coordinator's reservation and the receiver's hold, if any.
        for party, direction in (
            (key.coordinator_party, TransferDirection.OUTGOING),
            (truth.receiver, TransferDirection.INCOMING),
        ):
            reservation = sim.nodes[party].store.reservations.get(str(key.transfer_id))
            if reservation is None or reservation.direction is not direction:
                continue
            wanted = _APPLIED.get(expected) if expected is not None else None
            if reservation.state is not wanted:
                sim.violation(
                    "ATOMICITY",
                    f"{party}'s ledger {reservation.state} {direction} for {name}, "
                    f"log says {expected}",
                )


def _check_adjustments(sim: Simulation, outcomes: dict[TransferKey, Outcome]) -> None:
    """Invariant 3: a committed first transfer records the transferring Party's
    adjustment with its debit; an aborted one records none."""
    for key in sim.transfers:
        node = sim.nodes[key.coordinator_party]
        recorded = sum(
            adjustment.quantity
            for adjustment in node.store.adjustments
            if adjustment.transfer_id == str(key.transfer_id)
        )
        reservation = node.store.reservations.get(str(key.transfer_id))
        first_transfer = 0
        if reservation is not None and outcomes.get(key) is Outcome.COMMIT:
            first_transfer = reservation.first_transfer_quantity
        if recorded != first_transfer:
            sim.violation(
                "CORRESPONDING_ADJUSTMENT",
                f"{key.coordinator_party} recorded {recorded}, expected {first_transfer} "
                f"for {_name(key)}",
            )
    for party, node in sim.nodes.items():
        for adjustment in node.store.adjustments:
            if adjustment.party != party:
                sim.violation(
                    "CORRESPONDING_ADJUSTMENT", f"{party} adjusted for {adjustment.party}"
                )


def _check_sovereignty(sim: Simulation) -> None:
    """Invariants 6 and 7: nothing but an honest transfer touches an honest ledger."""
    honest = {str(key.transfer_id): key for key in sim.transfers}
    for party, node in sim.nodes.items():
        for reservation in node.store.reservations.values():
            key = honest.get(reservation.transfer_id)
            truth = sim.transfers.get(key) if key is not None else None
            legitimate = (
                key is not None
                and truth is not None
                and (
                    (
                        reservation.direction is TransferDirection.OUTGOING
                        and key.coordinator_party == party
                    )
                    or (
                        reservation.direction is TransferDirection.INCOMING
                        and truth.receiver == party
                        and reservation.counterparty_party == key.coordinator_party
                    )
                )
            )
            if not legitimate:
                sim.violation(
                    "SOVEREIGNTY",
                    f"{party} holds {reservation.direction} {reservation.transfer_id} with "
                    f"{reservation.counterparty_party}, of no honest transfer",
                )
        for key, record in node.transfer_store.transfers.items():
            state = record.state
            if (
                key.coordinator_party in sim.hostile
                and isinstance(state, ParticipantState)
                and state.phase in (ParticipantPhase.PREPARED, ParticipantPhase.COMMITTED)
            ):
                sim.violation("SOVEREIGNTY", f"{party} {state.phase} for hostile {_name(key)}")


def _check_edge_errors(sim: Simulation) -> None:
    """A handler that raised, or a winning decision the ledger could not apply, is a
    broken invariant: the edge logs it and quarantines the record."""
    for event in sim.logged_errors:
        detail = str(event.get("error") or event.get("exc_info") or "")[:300]
        sim.violation(
            "EDGE_ERROR",
            f"{event.get('party')} {event.get('event')} ({event.get('transfer_id')}): {detail}",
        )
    for party in sim.parties:
        for refused in sim.nodes[party].quarantine.refused():
            if refused.reason_code == ReasonCode.LEDGER_INVARIANT:
                sim.violation(
                    "EDGE_ERROR",
                    f"{party} could not apply a winning decision ({refused.transfer_id}): "
                    f"{refused.detail[:300]}",
                )


# (approach, originating registry, Party, first serial, last serial)
PartyRange = tuple[str, str, str, int, int]


def _joined(ranges: list[PartyRange]) -> list[PartyRange]:
    out: list[PartyRange] = []
    for current in sorted(ranges, key=lambda r: (r[0], r[1], r[3])):
        if out and out[-1][:3] == current[:3] and out[-1][4] + 1 == current[3]:
            out[-1] = (*out[-1][:4], current[4])
        else:
            out.append(current)
    return out


def ledger_holdings(sim: Simulation) -> list[PartyRange]:
    """Every serial range any honest ledger holds, by Party."""
    return _joined(
        [
            (
                block.attributes.cooperative_approach_id,
                block.attributes.originating_registry_id,
                party,
                block.first_serial,
                block.last_serial,
            )
            for party, node in sim.nodes.items()
            for block in node.blocks()
            if block.status is BlockStatus.HELD
        ]
    )


def index_holdings(node: Node) -> tuple[list[PartyRange], list[str]]:
    """What the node's unit index says each Party holds, and its segments with no one
    holder (the sim retires nothing, so every segment in the index must have one)."""
    held: list[PartyRange] = []
    unclear: list[str] = []
    for key, segment in node.index.holdings():
        owner = holdings_by_party([segment])
        if not owner:
            unclear.append(f"{key.originating_registry_id} {segment}")
        for party, ranges in owner.items():
            held.extend(
                (key.cooperative_approach_id, key.originating_registry_id, party, first, last)
                for first, last in ranges
            )
    return _joined(held), unclear


def _check_unit_index(sim: Simulation) -> None:
    """Invariant 8 at the quiescent end: every node's unit index, built from the unit
    log and the decision topic only, equals the union of the honest ledgers."""
    expected = ledger_holdings(sim)
    for party, node in sim.nodes.items():
        held, unclear = index_holdings(node)
        missing = sorted(set(expected) - set(held))
        extra = sorted(set(held) - set(expected))
        if missing or extra or unclear:
            sim.violation(
                "UNIT_INDEX",
                f"{party}'s index: missing {missing[:3]}, in no ledger {extra[:3]}, "
                f"unclear {unclear[:3]}",
            )


def check_final(sim: Simulation) -> None:
    check_continuously(sim)
    outcomes = first_genuine_outcomes(sim)
    _check_conservation(sim)
    _check_atomicity(sim, outcomes)
    _check_adjustments(sim, outcomes)
    _check_sovereignty(sim)
    _check_edge_errors(sim)
    _check_unit_index(sim)
