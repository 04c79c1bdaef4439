"""The authorising Party's side of a first transfer at use or cancellation abroad.

Another registry used for OIMP, or cancelled, units under this Party's LoA
whose first transfer is their use or cancellation, and sent a signed notice
(``registry.domain.first_transfer``). Applying it records the first
transfer here: the blocks this registry sent abroad are marked first
transferred, the corresponding adjustment is added for their vintage year and
the audit trail gets a FIRST_TRANSFER entry per range (the AEF's first-transfer
row, with the using Party as the acquiring one). The units already counted
against the LoA's cap when they left, so the cap is not counted again.

A notice the checks refuse raises ``DomainError``: nothing is written, and the
bus quarantines the record. A second notice of any of the same units is refused
(``FIRST_TRANSFER_ALREADY_NOTICED``), so no range is ever adjusted twice.
"""

from __future__ import annotations

from dataclasses import replace

from registry.application._common import Lookups, load_node
from registry.application.commands import ApplyFirstTransferNotice
from registry.application.ports import Clock, UnitOfWork
from registry.application.results import MovementResult
from registry.domain.adjustments import CorrespondingAdjustment
from registry.domain.audit import AuditEntry
from registry.domain.authorisations import Purpose
from registry.domain.blocks import BlockStatus, SerialBlock, TransferRole, carve
from registry.domain.errors import refuse_if_any
from registry.domain.first_transfer import (
    as_first_transferred,
    check_first_transfer_notice,
    first_transfer_records,
)


def apply_first_transfer_notice(
    uow: UnitOfWork, clock: Clock, command: ApplyFirstTransferNotice
) -> MovementResult:
    notice = command.notice
    now = clock.now()
    with uow:
        # Serialise with other notices and incoming transfers: the "already noticed"
        # check and the update must be atomic against a concurrent notice.
        node = uow.registry_node.lock() or load_node(uow)
        lookups = Lookups(uow)
        transferred_out: list[SerialBlock] = []
        for spec in notice.blocks:
            transferred_out += uow.blocks.transferred_out_overlapping(
                spec.attributes.originating_registry_id, spec.first_serial, spec.last_serial
            )
        in_flight = [
            block
            for spec in notice.blocks
            for block in uow.blocks.present_overlapping(
                spec.attributes.originating_registry_id, spec.first_serial, spec.last_serial
            )
            if block.status is BlockStatus.RESERVED and block.transfer_role is TransferRole.DELIVERY
        ]
        authorisation = lookups.authorisation_for(node.party, notice.authorisation_id)
        refuse_if_any(
            check_first_transfer_notice(
                notice, authorisation, transferred_out, own_party=node.party, in_flight=in_flight
            ),
            f"first-transfer notice {notice.notice_id} from {notice.noticing_party} is refused",
        )
        stored = {block.block_id: block for block in transferred_out}
        pieces = list(stored.values())
        adjustments: list[CorrespondingAdjustment] = []
        audit: list[AuditEntry] = []
        for spec in notice.blocks:
            covering: list[SerialBlock] = []
            carved: list[SerialBlock] = []
            for piece in pieces:
                if piece.attributes.originating_registry_id != (
                    spec.attributes.originating_registry_id
                ) or not piece.overlaps(spec.first_serial, spec.last_serial):
                    carved.append(piece)
                    continue
                lower, middle, upper = carve(piece, spec.first_serial, spec.last_serial)
                done = as_first_transferred(middle)
                carved += [part for part in (lower, done, upper) if part is not None]
                covering.append(done)
            pieces = carved
            # One adjustment and one audit entry per range, whatever number of
            # departures the units had: the first transfer happens once.
            first = covering[0]
            ranged = replace(
                first,
                first_serial=spec.first_serial,
                last_serial=spec.last_serial,
                block_id=None,
            )
            records = first_transfer_records(
                node.party,
                ranged,
                lookups.known_approach(ranged.attributes.cooperative_approach_id),
                at=now,
                purpose=Purpose.OIMP,
                counterparty_party=notice.noticing_party,
            )
            adjustments.append(records.adjustment)
            audit.append(records.audit)
        # carve keeps a stored row's id on its lowest piece; the other pieces are new rows.
        uow.blocks.update_many(
            [
                piece
                for piece in pieces
                if piece.block_id is not None and piece != stored[piece.block_id]
            ]
        )
        uow.blocks.add_many([piece for piece in pieces if piece.block_id is None])
        uow.adjustments.add_many(adjustments)
        uow.audit.append_many(audit)
        uow.commit()
    return MovementResult(sum(spec.quantity for spec in notice.blocks), notice.blocks)
