"""Sender side of a cross-border transfer: reserve, finalise, release.

The protocol layer calls ``reserve_for_transfer`` before sending PREPARE,
``finalise_outgoing_transfer`` when COMMIT wins and
``release_outgoing_reservation`` when ABORT wins. Each runs in one unit of work;
finalise and release are idempotent, so re-applying a decision is harmless.
"""

from __future__ import annotations

from a6wire.identifiers import is_party_code
from registry.application._common import (
    Changes,
    Lookups,
    load_node,
    lock_reservation,
    lock_usable_account,
    pick_units,
)
from registry.application._movements import count_against_caps
from registry.application.commands import (
    FinaliseOutgoingTransfer,
    ReleaseOutgoingReservation,
    ReserveForTransfer,
)
from registry.application.ports import Clock, UnitOfWork
from registry.application.results import ReservationResult
from registry.domain.accounts import AccountKind, retirement_account_id
from registry.domain.adjustments import CorrespondingAdjustment
from registry.domain.approaches import check_cooperative_approach
from registry.domain.audit import AuditAction, AuditEntry, audit_entry
from registry.domain.authorisations import check_authorisation
from registry.domain.blocks import BlockStatus, SerialBlock, TransferRole, merge_adjacent
from registry.domain.errors import DomainError, ReasonCode, refuse_if_any
from registry.domain.first_transfer import (
    Moment,
    cap_quantities,
    first_transfer_records,
    is_first_transfer,
    omge_refusals,
    omge_shares,
)
from registry.domain.registry_node import RegistryNode
from registry.domain.selection import Pick, check_selection, pick_by_quantity
from registry.domain.transfers import (
    Reservation,
    ReservationState,
    TransferDirection,
    check_transfer_id,
)


def reserve_for_transfer(
    uow: UnitOfWork, clock: Clock, command: ReserveForTransfer
) -> ReservationResult:
    """Run the sender-side checks (3-8, 10) and lock the units and the OMGE share."""
    now = clock.now()
    with uow:
        node = load_node(uow)
        existing = uow.reservations.get(command.transfer_id)
        if existing is not None:
            # Check 1: a repeated transaction id returns the first answer.
            if (
                existing.direction is TransferDirection.OUTGOING
                and existing.account_id == command.from_account_id
            ):
                return reservation_result(uow, existing)
            reason = (
                ReasonCode.TRANSFER_ID_REUSED
                if existing.coordinator_party == node.party
                else ReasonCode.TRANSFER_ID_CLAIMED
            )
            raise DomainError(reason, f"transfer id {command.transfer_id} is taken")
        refuse_if_any(_request_refusals(node, command), "the transfer is refused")
        lock_usable_account(uow, command.from_account_id)
        lookups = Lookups(uow)

        def refuse(block: SerialBlock) -> list[ReasonCode]:
            attributes = block.attributes
            reasons = check_cooperative_approach(
                lookups.approach(attributes.cooperative_approach_id),
                parties=(node.party, command.acquiring_party),
                vintage=attributes.vintage,
                sector=attributes.sector,
                activity_type=attributes.activity_type,
                metric=attributes.metric,
                on=now.date(),
            )
            # The cap is checked on the whole pick below; here only "is it exhausted".
            counted = (
                lookups.counted_quantity(attributes.authorisation_id)
                if attributes.authorisation_id is not None
                and attributes.first_transferring_party == node.party
                else 0
            )
            return reasons + check_authorisation(
                lookups.authorisation(block),
                attributes,
                acquiring_party=command.acquiring_party,
                acquiring_entity=command.acquiring_entity,
                purpose=command.purpose,
                on=now.date(),
                quantity=0,
                counted_quantity=counted,
            )

        pick = pick_units(
            uow, command.from_account_id, command.selection, refuse, command.authorisation
        )
        changes = Changes()
        changes.put(pick.stays)
        deliveries = [
            block.moved(
                status=BlockStatus.RESERVED,
                transfer_id=command.transfer_id,
                transfer_role=TransferRole.DELIVERY,
            )
            for block in pick.taken
        ]
        changes.put(deliveries)
        first_transfers = _first_transfers(node, deliveries)
        count_against_caps(node, first_transfers, lookups)
        omge = _reserve_omge(uow, lookups, changes, command, first_transfers)
        changes.write(uow)
        reservation = Reservation(
            transfer_id=command.transfer_id,
            direction=TransferDirection.OUTGOING,
            account_id=command.from_account_id,
            counterparty_party=command.acquiring_party,
            coordinator_party=node.party,
            purpose=command.purpose,
            quantity=pick.quantity,
            omge_quantity=sum(block.quantity for block in omge),
            first_transfer_quantity=sum(block.quantity for block in first_transfers),
            state=ReservationState.PENDING,
            created_at=now,
            updated_at=now,
            acquiring_entity=command.acquiring_entity,
        )
        uow.reservations.add(reservation)
        uow.audit.append_many(
            [
                audit_entry(
                    block,
                    AuditAction.RESERVATION,
                    at=now,
                    from_account_id=command.from_account_id,
                    transfer_id=command.transfer_id,
                    counterparty_party=command.acquiring_party,
                    purpose=command.purpose,
                )
                for block in [*deliveries, *omge]
            ]
        )
        uow.commit()
    return _result(reservation, deliveries, omge)


def _request_refusals(node: RegistryNode, command: ReserveForTransfer) -> list[ReasonCode]:
    reasons = check_transfer_id(command.transfer_id) + node.check_transfers_allowed()
    reasons += check_selection(command.selection)
    if not is_party_code(command.acquiring_party):
        reasons.append(ReasonCode.MALFORMED_IDENTIFIER)
    elif command.acquiring_party == node.party:
        reasons.append(ReasonCode.SAME_PARTY)
    return reasons


def _first_transfers(node: RegistryNode, deliveries: list[SerialBlock]) -> list[SerialBlock]:
    """The delivered blocks whose first transfer this cross-border transfer is."""
    return [
        block
        for block in deliveries
        if is_first_transfer(
            block.attributes, None, party=node.party, moment=Moment.CROSS_BORDER_TRANSFER
        )
    ]


def _reserve_omge(
    uow: UnitOfWork,
    lookups: Lookups,
    changes: Changes,
    command: ReserveForTransfer,
    first_transfers: list[SerialBlock],
) -> list[SerialBlock]:
    """Lock the OMGE share of the first transfers, from their own approach and vintage.

    Refused (OMGE_SHARE_UNAVAILABLE) when the account does not hold enough units of
    that approach and vintage besides those transferred: taking units of another
    vintage would cancel a different year's mitigation than the one transferred.
    """
    approaches = {
        block.attributes.cooperative_approach_id: lookups.known_approach(
            block.attributes.cooperative_approach_id
        )
        for block in first_transfers
    }
    reserved: list[SerialBlock] = []
    for (approach_id, vintage), omge_quantity in omge_shares(first_transfers, approaches).items():
        candidates = (
            block
            for block in changes.held_overlay(
                uow.blocks.iter_held(
                    command.from_account_id, cooperative_approach_id=approach_id, vintage=vintage
                ),
                command.from_account_id,
                approach_id,
            )
            if block.attributes.vintage == vintage
        )
        try:
            pick: Pick = pick_by_quantity(candidates, omge_quantity, omge_refusals)
        except DomainError as error:
            raise DomainError(
                ReasonCode.OMGE_SHARE_UNAVAILABLE,
                f"{approach_id} cancels {omge_quantity} units of vintage {vintage} for OMGE; "
                f"{command.from_account_id} does not hold them besides those transferred",
                reasons=error.reasons,
            ) from error
        changes.put(pick.stays)
        pieces = [
            block.moved(
                status=BlockStatus.RESERVED,
                transfer_id=command.transfer_id,
                transfer_role=TransferRole.OMGE,
            )
            for block in pick.taken
        ]
        changes.put(pieces)
        reserved.extend(pieces)
    return reserved


def _result(
    reservation: Reservation, deliveries: list[SerialBlock], omge: list[SerialBlock]
) -> ReservationResult:
    return ReservationResult(
        transfer_id=reservation.transfer_id,
        state=reservation.state,
        quantity=reservation.quantity,
        omge_quantity=reservation.omge_quantity,
        first_transfer_quantity=reservation.first_transfer_quantity,
        # The blocks as they stand before this transfer: ``first_transfer_done`` tells
        # the acquiring registry whether this transfer is their first transfer (it
        # reports that on its acquisition); it sets the flag itself when it credits them.
        blocks=tuple(block.to_spec() for block in deliveries),
        omge_blocks=tuple(block.to_spec() for block in omge),
    )


def reservation_result(uow: UnitOfWork, reservation: Reservation) -> ReservationResult:
    blocks = sorted(uow.blocks.for_transfer(reservation.transfer_id), key=lambda b: b.key)
    deliveries = [b for b in blocks if b.transfer_role is TransferRole.DELIVERY]
    omge = [b for b in blocks if b.transfer_role is TransferRole.OMGE]
    return _result(reservation, deliveries, omge)


def finalise_outgoing_transfer(
    uow: UnitOfWork, clock: Clock, command: FinaliseOutgoingTransfer
) -> ReservationResult:
    """COMMIT won: debit the units, record the first transfer and its adjustment, cancel OMGE."""
    now = clock.now()
    with uow:
        node = load_node(uow)
        reservation = lock_reservation(
            uow, command.transfer_id, node.party, TransferDirection.OUTGOING
        )
        if reservation.state is ReservationState.FINALISED:
            return reservation_result(uow, reservation)
        finalised = reservation.finalised(now)
        lookups = Lookups(uow)
        omge_account = retirement_account_id(node.registry_id, AccountKind.OMGE_CANCELLATION)
        changed: list[SerialBlock] = []
        adjustments: list[CorrespondingAdjustment] = []
        audit: list[AuditEntry] = []
        for block in uow.blocks.for_transfer(command.transfer_id):
            if block.transfer_role is TransferRole.OMGE:
                cancelled = block.moved(
                    account_id=omge_account,
                    status=BlockStatus.CANCELLED,
                    transfer_id=command.transfer_id,
                    transfer_role=TransferRole.OMGE,
                )
                changed.append(cancelled)
                audit.append(
                    audit_entry(
                        cancelled,
                        AuditAction.OMGE_CANCELLATION,
                        at=now,
                        from_account_id=block.account_id,
                        to_account_id=omge_account,
                        transfer_id=command.transfer_id,
                    )
                )
                continue
            delivered = block
            if is_first_transfer(
                block.attributes, None, party=node.party, moment=Moment.CROSS_BORDER_TRANSFER
            ):
                records = first_transfer_records(
                    node.party,
                    block,
                    lookups.known_approach(block.attributes.cooperative_approach_id),
                    at=now,
                    purpose=reservation.purpose,
                    transfer_id=command.transfer_id,
                    counterparty_party=reservation.counterparty_party,
                )
                delivered = records.block
                adjustments.append(records.adjustment)
                audit.append(records.audit)
            out = delivered.moved(
                status=BlockStatus.TRANSFERRED_OUT,
                transfer_id=command.transfer_id,
                transfer_role=TransferRole.DELIVERY,
            )
            changed.append(out)
            audit.append(
                audit_entry(
                    out,
                    AuditAction.TRANSFER_OUT,
                    at=now,
                    from_account_id=block.account_id,
                    transfer_id=command.transfer_id,
                    counterparty_party=reservation.counterparty_party,
                    purpose=reservation.purpose,
                )
            )
        uow.blocks.update_many(changed)
        uow.adjustments.add_many(adjustments)
        uow.audit.append_many(audit)
        uow.reservations.update(finalised)
        uow.commit()
        deliveries = [b for b in changed if b.transfer_role is TransferRole.DELIVERY]
        omge = [b for b in changed if b.transfer_role is TransferRole.OMGE]
    return _result(
        finalised, sorted(deliveries, key=lambda b: b.key), sorted(omge, key=lambda b: b.key)
    )


def release_outgoing_reservation(
    uow: UnitOfWork, clock: Clock, command: ReleaseOutgoingReservation
) -> ReservationResult:
    """ABORT won: unlock the units (merging them back where they were split) and the cap."""
    now = clock.now()
    with uow:
        node = load_node(uow)
        reservation = lock_reservation(
            uow, command.transfer_id, node.party, TransferDirection.OUTGOING
        )
        if reservation.state is ReservationState.RELEASED:
            return _result(reservation, [], [])
        released = reservation.released(now)
        lookups = Lookups(uow)
        blocks = sorted(uow.blocks.for_transfer(command.transfer_id), key=lambda b: b.key)
        deliveries = [b for b in blocks if b.transfer_role is TransferRole.DELIVERY]
        counted = cap_quantities(_first_transfers(node, deliveries))
        for authorisation_id, quantity in counted.items():
            lookups.add_counted_quantity(authorisation_id, -quantity)
        audit = [
            audit_entry(
                block,
                AuditAction.RESERVATION_RELEASE,
                at=now,
                to_account_id=block.account_id,
                transfer_id=command.transfer_id,
            )
            for block in blocks
        ]
        _unlock_merging(uow, blocks)
        uow.audit.append_many(audit)
        uow.reservations.update(released)
        uow.commit()
    return _result(released, [], [])


def _unlock_merging(uow: UnitOfWork, blocks: list[SerialBlock]) -> None:
    """Return locked pieces to HELD, merged into the lower neighbour they were split from.

    Merging keeps an account's block count from growing with every aborted transfer.
    """
    changes = Changes()
    previous: SerialBlock | None = None
    for block in blocks:  # ascending serial order
        unlocked = block.moved(status=BlockStatus.HELD)
        lower = previous
        if lower is None or lower.last_serial + 1 != unlocked.first_serial:
            neighbours = uow.blocks.in_account_overlapping(
                unlocked.account_id,
                unlocked.attributes.originating_registry_id,
                unlocked.first_serial - 1,
                unlocked.first_serial - 1,
            )
            lower = changes.current(neighbours[0]) if neighbours else None
        merged = None if lower is None else merge_adjacent(lower, unlocked)
        if merged is not None:
            changes.put([merged])
            changes.deleted.append(unlocked)
            previous = merged
        else:
            changes.put([unlocked])
            previous = unlocked
    changes.write(uow)
