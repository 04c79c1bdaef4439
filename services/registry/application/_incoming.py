"""Receiver side of a cross-border transfer: validate, hold, finalise, release.

``validate_incoming_transfer`` gives the reasons for a "no" vote (none: vote
yes); ``hold_incoming_transfer`` validates again and records pending credit;
``finalise_incoming_transfer`` applies a winning COMMIT and
``release_incoming_transfer`` a winning ABORT. Acquisition records no
corresponding adjustment: acquisition alone is not use.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from a6wire.identifiers import is_party_code
from registry.application._common import Lookups, load_node, lock_reservation
from registry.application.commands import (
    FinaliseIncomingTransfer,
    HoldIncomingTransfer,
    ReleaseIncomingTransfer,
    ValidateIncomingTransfer,
)
from registry.application.ports import Clock, UnitOfWork
from registry.application.results import IncomingResult, IncomingValidation
from registry.domain.accounts import check_usable_holding_account
from registry.domain.approaches import check_cooperative_approach
from registry.domain.audit import AuditAction, audit_entry
from registry.domain.authorisations import Authorisation, check_authorisation
from registry.domain.blocks import BlockSpec, BlockStatus, SerialBlock, TransferRole
from registry.domain.errors import ReasonCode, refuse_if_any
from registry.domain.first_transfer import as_first_transferred
from registry.domain.registry_node import RegistryNode
from registry.domain.transfers import (
    Reservation,
    ReservationState,
    TransferDirection,
    check_transfer_id,
    check_transfer_id_claims,
    reservation_claim,
)

# A PREPARE carries a bounded number of blocks; more is refused, not processed.
INCOMING_BLOCKS_PER_TRANSFER_MAX = 10_000

IncomingCommand = ValidateIncomingTransfer | HoldIncomingTransfer


def validate_incoming_transfer(
    uow: UnitOfWork, clock: Clock, command: ValidateIncomingTransfer
) -> IncomingValidation:
    with uow:
        existing = uow.reservations.get(command.transfer_id)
        if existing is not None:
            return IncomingValidation(
                command.transfer_id, _duplicate_reasons(existing, command.transferring_party)
            )
        reasons = _incoming_refusals(uow, load_node(uow), command, clock.now().date())
    return IncomingValidation(command.transfer_id, tuple(dict.fromkeys(reasons)))


def _duplicate_reasons(existing: Reservation, coordinator_party: str) -> tuple[ReasonCode, ...]:
    """The same transfer still pending here is a repeat; any other use of the id is refused.

    The coordinator of an incoming transfer is its transferring Party.
    """
    reasons = check_transfer_id_claims(coordinator_party, [reservation_claim(existing)])
    if not reasons and existing.direction is not TransferDirection.INCOMING:
        reasons.append(ReasonCode.TRANSFER_ID_CLAIMED)  # our own outgoing transfer's id
    return tuple(reasons)


def _incoming_refusals(
    uow: UnitOfWork, node: RegistryNode, command: IncomingCommand, today: date
) -> list[ReasonCode]:
    reasons = check_transfer_id(command.transfer_id) + node.check_transfers_allowed()
    if not is_party_code(command.transferring_party):
        reasons.append(ReasonCode.MALFORMED_IDENTIFIER)
    elif command.transferring_party == node.party:
        reasons.append(ReasonCode.SAME_PARTY)
    account = uow.accounts.get(command.to_account_id)
    reasons += check_usable_holding_account(account)
    if not command.blocks:
        reasons.append(ReasonCode.NON_POSITIVE_QUANTITY)
    if len(command.blocks) > INCOMING_BLOCKS_PER_TRANSFER_MAX:
        return [*reasons, ReasonCode.BATCH_TOO_LARGE]
    snapshots = _current_snapshots(command.authorisations)
    lookups = Lookups(uow)
    counted: defaultdict[str, int] = defaultdict(int)
    seen: list[BlockSpec] = []
    for spec in command.blocks:
        malformed = spec.malformations()
        if malformed:
            reasons += malformed
            continue
        attributes = spec.attributes
        reasons += check_cooperative_approach(
            lookups.approach(attributes.cooperative_approach_id),
            parties=(command.transferring_party, node.party),
            vintage=attributes.vintage,
            sector=attributes.sector,
            activity_type=attributes.activity_type,
            metric=attributes.metric,
            on=today,
        )
        # The LoA is the first transferring Party's, whoever sends the units now.
        snapshot = snapshots.get((attributes.first_transferring_party, attributes.authorisation_id))
        reasons += check_authorisation(
            snapshot,
            attributes,
            acquiring_party=node.party,
            acquiring_entity=None if account is None else account.holder_entity_id,
            purpose=command.purpose,
            on=today,
            quantity=spec.quantity,
            counted_quantity=counted[str(attributes.authorisation_id)],
        )
        counted[str(attributes.authorisation_id)] += spec.quantity
        reasons += _overlap_refusals(uow, spec, seen)
        seen.append(spec)
    return reasons


def _current_snapshots(
    authorisations: tuple[Authorisation, ...],
) -> dict[tuple[str, str | None], Authorisation]:
    current: dict[tuple[str, str | None], Authorisation] = {}
    for authorisation in authorisations:
        key = (authorisation.authorising_party, authorisation.authorisation_id)
        if key not in current or current[key].version < authorisation.version:
            current[key] = authorisation
    return current


def _overlap_refusals(uow: UnitOfWork, spec: BlockSpec, seen: list[BlockSpec]) -> list[ReasonCode]:
    """Check 4 on arrival: no serial already present here or twice in this transfer."""
    registry_id = spec.attributes.originating_registry_id
    inside = any(
        other.attributes.originating_registry_id == registry_id
        and other.first_serial <= spec.last_serial
        and spec.first_serial <= other.last_serial
        for other in seen
    )
    if inside or uow.blocks.present_overlapping(registry_id, spec.first_serial, spec.last_serial):
        return [ReasonCode.SERIAL_OVERLAP]
    return []


def hold_incoming_transfer(
    uow: UnitOfWork, clock: Clock, command: HoldIncomingTransfer
) -> IncomingResult:
    now = clock.now()
    with uow:
        existing = uow.reservations.get(command.transfer_id)
        if existing is not None:
            refuse_if_any(
                _duplicate_reasons(existing, command.transferring_party),
                f"transfer id {command.transfer_id} is known here under "
                f"{existing.coordinator_party}",
            )
            return _incoming_result(uow, existing)
        # Incoming transfers are rare; serialising them on the node row makes the
        # overlap check and the insert atomic against a concurrent hold.
        node = uow.registry_node.lock()
        if node is None:
            node = load_node(uow)
        account = uow.accounts.lock(command.to_account_id)
        refuse_if_any(
            _incoming_refusals(uow, node, command, now.date()),
            f"incoming transfer {command.transfer_id} is refused",
        )
        _keep_snapshots(uow, command.authorisations)
        blocks = [
            SerialBlock(
                command.to_account_id,
                BlockStatus.INCOMING,
                spec.first_serial,
                spec.last_serial,
                # As sent: the flag says whether this transfer is the units' first
                # transfer; finalising sets it, once the units have crossed the border.
                spec.attributes,
                transfer_id=command.transfer_id,
                transfer_role=TransferRole.DELIVERY,
            )
            for spec in command.blocks
        ]
        uow.blocks.add_many(blocks)
        reservation = Reservation(
            transfer_id=command.transfer_id,
            direction=TransferDirection.INCOMING,
            account_id=command.to_account_id,
            counterparty_party=command.transferring_party,
            coordinator_party=command.transferring_party,
            purpose=command.purpose,
            quantity=sum(block.quantity for block in blocks),
            omge_quantity=0,
            first_transfer_quantity=0,
            state=ReservationState.PENDING,
            created_at=now,
            updated_at=now,
            acquiring_entity=None if account is None else account.holder_entity_id,
        )
        uow.reservations.add(reservation)
        uow.audit.append_many(
            [
                audit_entry(
                    block,
                    AuditAction.INCOMING_HOLD,
                    at=now,
                    to_account_id=command.to_account_id,
                    transfer_id=command.transfer_id,
                    counterparty_party=command.transferring_party,
                    purpose=command.purpose,
                )
                for block in blocks
            ]
        )
        uow.commit()
    return IncomingResult(
        reservation.transfer_id,
        reservation.state,
        reservation.quantity,
        tuple(block.to_spec() for block in blocks),
    )


def _keep_snapshots(uow: UnitOfWork, authorisations: tuple[Authorisation, ...]) -> None:
    """Keep the foreign LoA versions that came with the units, to check onward transfers."""
    for authorisation in authorisations:
        if (
            uow.authorisations.get(
                authorisation.authorising_party,
                authorisation.authorisation_id,
                authorisation.version,
            )
            is None
        ):
            uow.authorisations.add(authorisation)


def _incoming_result(uow: UnitOfWork, reservation: Reservation) -> IncomingResult:
    blocks = sorted(uow.blocks.for_transfer(reservation.transfer_id), key=lambda b: b.key)
    return IncomingResult(
        reservation.transfer_id,
        reservation.state,
        reservation.quantity,
        tuple(block.to_spec() for block in blocks),
    )


def finalise_incoming_transfer(
    uow: UnitOfWork, clock: Clock, command: FinaliseIncomingTransfer
) -> IncomingResult:
    """COMMIT won: the held blocks become holdings of the destination account."""
    now = clock.now()
    with uow:
        reservation = lock_reservation(
            uow, command.transfer_id, command.coordinator_party, TransferDirection.INCOMING
        )
        if reservation.state is ReservationState.FINALISED:
            return _incoming_result(uow, reservation)
        finalised = reservation.finalised(now)
        blocks = sorted(uow.blocks.for_transfer(command.transfer_id), key=lambda b: b.key)
        # The transfer id stays on the row so the acquisition can be traced to it.
        acquired = [
            as_first_transferred(block).moved(
                status=BlockStatus.HELD,
                transfer_id=command.transfer_id,
                transfer_role=TransferRole.DELIVERY,
            )
            for block in blocks
        ]
        was_first = {block.key: not block.attributes.first_transfer_done for block in blocks}
        uow.blocks.update_many(acquired)
        uow.audit.append_many(
            [
                audit_entry(
                    block,
                    AuditAction.ACQUISITION,
                    at=now,
                    to_account_id=block.account_id,
                    transfer_id=command.transfer_id,
                    counterparty_party=reservation.counterparty_party,
                    purpose=reservation.purpose,
                    first_transfer=was_first[block.key],
                )
                for block in acquired
            ]
        )
        uow.reservations.update(finalised)
        uow.commit()
    return IncomingResult(
        finalised.transfer_id,
        finalised.state,
        finalised.quantity,
        tuple(block.to_spec() for block in acquired),
    )


def release_incoming_transfer(
    uow: UnitOfWork, clock: Clock, command: ReleaseIncomingTransfer
) -> IncomingResult:
    """ABORT won: the pending credit disappears; the audit trail keeps the story."""
    now = clock.now()
    with uow:
        reservation = lock_reservation(
            uow, command.transfer_id, command.coordinator_party, TransferDirection.INCOMING
        )
        if reservation.state is ReservationState.RELEASED:
            return IncomingResult(reservation.transfer_id, reservation.state, 0, ())
        released = reservation.released(now)
        blocks = uow.blocks.for_transfer(command.transfer_id)
        uow.blocks.delete_many(blocks)
        uow.audit.append_many(
            [
                audit_entry(
                    block,
                    AuditAction.INCOMING_RELEASE,
                    at=now,
                    to_account_id=block.account_id,
                    transfer_id=command.transfer_id,
                    counterparty_party=reservation.counterparty_party,
                )
                for block in blocks
            ]
        )
        uow.reservations.update(released)
        uow.commit()
    return IncomingResult(released.transfer_id, released.state, 0, ())
