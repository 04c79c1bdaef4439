"""Handlers that move units inside this registry: issuance, internal transfer, use, cancellation."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import date, datetime

from a6wire.identifiers import VINTAGE_MAX, VINTAGE_MIN
from registry.application._common import (
    Changes,
    Lookups,
    load_node,
    lock_usable_account,
    no_refusal,
    pick_units,
)
from registry.application.commands import (
    CancelForOmge,
    CancelVoluntarily,
    IssuanceLine,
    IssueUnits,
    TransferInternally,
    UseForOimp,
    UseTowardsNdc,
)
from registry.application.ports import Clock, UnitOfWork
from registry.application.results import MovementResult
from registry.domain.accounts import AccountKind, retirement_account_id
from registry.domain.adjustments import (
    CorrespondingAdjustment,
    first_transfer_adjustment,
    use_adjustment,
)
from registry.domain.audit import AuditAction, AuditEntry, audit_entry
from registry.domain.authorisations import Authorisation, Purpose
from registry.domain.blocks import BlockAttributes, BlockStatus, SerialBlock
from registry.domain.custody import UnitEventKind, announcements
from registry.domain.errors import DomainError, ReasonCode, refuse_if_any
from registry.domain.registry_node import RegistryNode
from registry.domain.selection import UnitSelection, check_selection

# One issuance command is one transaction; beyond this many blocks, split it.
ISSUANCE_LINES_PER_COMMAND_MAX = 20_000


def issue_units(uow: UnitOfWork, clock: Clock, command: IssueUnits) -> MovementResult:
    if not 0 < len(command.lines) <= ISSUANCE_LINES_PER_COMMAND_MAX:
        raise DomainError(
            ReasonCode.BATCH_TOO_LARGE,
            f"an issuance has 1 to {ISSUANCE_LINES_PER_COMMAND_MAX} lines, "
            f"not {len(command.lines)}",
        )
    now = clock.now()
    with uow:
        node = load_node(uow)
        lock_usable_account(uow, command.account_id)
        lookups = Lookups(uow)
        line_attributes = [
            _issuance_attributes(node, line, lookups, now.date()) for line in command.lines
        ]
        next_serial = uow.registry_node.allocate_serials(
            sum(line.quantity for line in command.lines)
        )
        blocks: list[SerialBlock] = []
        for line, attributes in zip(command.lines, line_attributes, strict=True):
            blocks.append(
                SerialBlock(
                    command.account_id,
                    BlockStatus.HELD,
                    next_serial,
                    next_serial + line.quantity - 1,
                    attributes,
                )
            )
            next_serial += line.quantity
        adjustments, audit = _issuance_records(node, blocks, lookups, now, command.account_id)
        uow.blocks.add_many(blocks)
        uow.adjustments.add_many(adjustments)
        uow.audit.append_many(audit)
        # Public, Party level, in this transaction: every node's unit index learns of it.
        uow.unit_log.announce(announcements(UnitEventKind.ISSUED, node.party, blocks))
        uow.commit()
    return MovementResult(sum(b.quantity for b in blocks), tuple(b.to_spec() for b in blocks))


def _issuance_attributes(
    node: RegistryNode, line: IssuanceLine, lookups: Lookups, today: date
) -> BlockAttributes:
    if line.quantity <= 0:
        raise DomainError(ReasonCode.NON_POSITIVE_QUANTITY, "an issuance line issues units")
    approach = lookups.known_approach(line.cooperative_approach_id)
    # The approach must cover what is issued under it, though it need not be in force yet.
    if not approach.covers(
        vintage=line.vintage,
        sector=line.sector,
        activity_type=line.activity_type,
        metric=approach.metric,
    ):
        raise DomainError(
            ReasonCode.NOT_COVERED_BY_COOPERATIVE_APPROACH,
            f"{line.cooperative_approach_id} does not cover vintage {line.vintage}, "
            f"sector {line.sector!r}, activity {line.activity_type!r}",
        )
    authorisation = _issuance_authorisation(node, line, lookups)
    return BlockAttributes(
        cooperative_approach_id=line.cooperative_approach_id,
        originating_registry_id=node.registry_id,
        # Units issued here are first transferred, if ever, by this Party.
        first_transferring_party=node.party,
        vintage=line.vintage,
        metric=approach.metric,
        gwp_values=line.gwp_values,
        mitigation_type=line.mitigation_type,
        sector=line.sector,
        activity_type=line.activity_type,
        first_transfer_done=(
            authorisation is not None and authorisation.first_transfer_at_authorisation_or_issuance
        ),
        authorisation_id=None if authorisation is None else authorisation.authorisation_id,
        authorisation_version=None if authorisation is None else authorisation.version,
    )


def _issuance_authorisation(
    node: RegistryNode, line: IssuanceLine, lookups: Lookups
) -> Authorisation | None:
    if line.authorisation_id is None:
        return None
    authorisation = lookups.authorisation_for(node.party, line.authorisation_id)
    if authorisation is None:
        raise DomainError(ReasonCode.NO_AUTHORISATION, f"no authorisation {line.authorisation_id}")
    if authorisation.revoked:
        raise DomainError(
            ReasonCode.AUTHORISATION_REVOKED, f"authorisation {line.authorisation_id} is revoked"
        )
    if authorisation.cooperative_approach_id != line.cooperative_approach_id:
        raise DomainError(
            ReasonCode.AUTHORISATION_WRONG_COOPERATIVE_APPROACH,
            f"{line.authorisation_id} authorises {authorisation.cooperative_approach_id}",
        )
    return authorisation


def _issuance_records(
    node: RegistryNode,
    blocks: list[SerialBlock],
    lookups: Lookups,
    now: datetime,
    account_id: str,
) -> tuple[list[CorrespondingAdjustment], list[AuditEntry]]:
    """Audit every block; where the LoA puts the first transfer at authorisation or
    issuance, record it now (2/CMA.3 annex para 2(b)) and count it against the cap."""
    adjustments: list[CorrespondingAdjustment] = []
    audit: list[AuditEntry] = []
    first_transferred: defaultdict[str, int] = defaultdict(int)
    for block in blocks:
        audit.append(audit_entry(block, AuditAction.ISSUANCE, at=now, to_account_id=account_id))
        if block.attributes.first_transfer_done:
            approach = lookups.known_approach(block.attributes.cooperative_approach_id)
            adjustments.append(first_transfer_adjustment(node.party, block, approach, at=now))
            # Only an LoA for OIMP puts the first transfer at issuance.
            audit.append(
                audit_entry(block, AuditAction.FIRST_TRANSFER, at=now, purpose=Purpose.OIMP)
            )
            first_transferred[str(block.attributes.authorisation_id)] += block.quantity
    count_against_caps(node, first_transferred, lookups)
    return adjustments, audit


def count_against_caps(node: RegistryNode, quantities: dict[str, int], lookups: Lookups) -> None:
    for authorisation_id, quantity in quantities.items():
        authorisation = lookups.authorisation_for(node.party, authorisation_id)
        counted = lookups.counted_quantity(authorisation_id)
        if (
            authorisation is not None
            and authorisation.quantity_cap is not None
            and counted + quantity > authorisation.quantity_cap
        ):
            raise DomainError(
                ReasonCode.QUANTITY_CAP_EXCEEDED,
                f"{authorisation_id} caps first transfers at {authorisation.quantity_cap}; "
                f"{counted} counted, {quantity} more requested",
            )
        lookups.add_counted_quantity(authorisation_id, quantity)


def transfer_internally(
    uow: UnitOfWork, clock: Clock, command: TransferInternally
) -> MovementResult:
    now = clock.now()
    with uow:
        node = load_node(uow)
        refuse_if_any(
            node.check_transfers_allowed() + check_selection(command.selection),
            "the transfer is refused",
        )
        if command.from_account_id == command.to_account_id:
            raise DomainError(ReasonCode.SAME_ACCOUNT, "a transfer needs two different accounts")
        # Lock in a fixed order so two opposite transfers cannot deadlock.
        for account_id in sorted((command.from_account_id, command.to_account_id)):
            lock_usable_account(uow, account_id)
        pick = pick_units(uow, command.from_account_id, command.selection, no_refusal)
        moved = [
            block.moved(account_id=command.to_account_id, status=BlockStatus.HELD)
            for block in pick.taken
        ]
        changes = Changes()
        changes.put(pick.stays)
        changes.put(moved)
        changes.write(uow)
        uow.audit.append_many(
            [
                audit_entry(
                    block,
                    AuditAction.INTERNAL_TRANSFER,
                    at=now,
                    from_account_id=command.from_account_id,
                    to_account_id=command.to_account_id,
                )
                for block in moved
            ]
        )
        uow.commit()
    return MovementResult(pick.quantity, tuple(block.to_spec() for block in moved))


def use_towards_ndc(uow: UnitOfWork, clock: Clock, command: UseTowardsNdc) -> MovementResult:
    if not VINTAGE_MIN <= command.year_of_use <= VINTAGE_MAX:
        raise DomainError(ReasonCode.INVALID_TIMEFRAME, f"year of use {command.year_of_use}")
    return _retire(
        uow,
        clock,
        command.account_id,
        command.selection,
        AccountKind.NDC_USE,
        year_of_use=command.year_of_use,
    )


def use_for_oimp(uow: UnitOfWork, clock: Clock, command: UseForOimp) -> MovementResult:
    return _retire(uow, clock, command.account_id, command.selection, AccountKind.OIMP_USE)


def cancel_voluntarily(uow: UnitOfWork, clock: Clock, command: CancelVoluntarily) -> MovementResult:
    return _retire(
        uow, clock, command.account_id, command.selection, AccountKind.VOLUNTARY_CANCELLATION
    )


def cancel_for_omge(uow: UnitOfWork, clock: Clock, command: CancelForOmge) -> MovementResult:
    return _retire(uow, clock, command.account_id, command.selection, AccountKind.OMGE_CANCELLATION)


_RETIREMENT_ACTIONS = {
    AccountKind.NDC_USE: (AuditAction.USE_TOWARDS_NDC, BlockStatus.RETIRED),
    AccountKind.OIMP_USE: (AuditAction.USE_FOR_OIMP, BlockStatus.RETIRED),
    AccountKind.VOLUNTARY_CANCELLATION: (AuditAction.VOLUNTARY_CANCELLATION, BlockStatus.CANCELLED),
    AccountKind.OMGE_CANCELLATION: (AuditAction.OMGE_CANCELLATION, BlockStatus.CANCELLED),
}


# The purpose a retirement serves, where it has one (cancellations have none).
_RETIREMENT_PURPOSES = {AccountKind.NDC_USE: Purpose.NDC, AccountKind.OIMP_USE: Purpose.OIMP}


def _retire(
    uow: UnitOfWork,
    clock: Clock,
    account_id: str,
    selection: UnitSelection,
    kind: AccountKind,
    *,
    year_of_use: int | None = None,
) -> MovementResult:
    now = clock.now()
    action, status = _RETIREMENT_ACTIONS[kind]
    with uow:
        node = load_node(uow)
        refuse_if_any(check_selection(selection), "nothing to retire")
        lock_usable_account(uow, account_id)
        target = retirement_account_id(node.registry_id, kind)
        lookups = Lookups(uow)

        def refuse(block: SerialBlock) -> list[ReasonCode]:
            if kind is AccountKind.OIMP_USE:
                return _oimp_use_refusals(lookups.authorisation(block), now.date())
            return []

        pick = pick_units(uow, account_id, selection, refuse)
        moved: list[SerialBlock] = []
        adjustments: list[CorrespondingAdjustment] = []
        audit: list[AuditEntry] = []
        first_transferred: defaultdict[str, int] = defaultdict(int)
        for block in pick.taken:
            piece = block.moved(account_id=target, status=status)
            authorisation = lookups.authorisation(block)
            approach = lookups.known_approach(block.attributes.cooperative_approach_id)
            if (
                kind is AccountKind.NDC_USE
                and year_of_use is not None
                and block.attributes.first_transfer_done
            ):
                # Only an ITMO (first transferred) is adjusted; a Party's own
                # never-transferred units used at home change no balance.
                adjustments.append(
                    use_adjustment(node.party, piece, approach, year_of_use=year_of_use, at=now)
                )
            elif (
                kind in (AccountKind.OIMP_USE, AccountKind.VOLUNTARY_CANCELLATION)
                and not block.attributes.first_transfer_done
                and authorisation is not None
                and authorisation.first_transfer_at_use_or_cancellation
            ):
                piece = replace(
                    piece, attributes=replace(piece.attributes, first_transfer_done=True)
                )
                adjustments.append(first_transfer_adjustment(node.party, piece, approach, at=now))
                audit.append(
                    audit_entry(piece, AuditAction.FIRST_TRANSFER, at=now, purpose=Purpose.OIMP)
                )
                first_transferred[authorisation.authorisation_id] += piece.quantity
            moved.append(piece)
            audit.append(
                audit_entry(
                    piece,
                    action,
                    at=now,
                    from_account_id=account_id,
                    to_account_id=target,
                    purpose=_RETIREMENT_PURPOSES.get(kind),
                    year_of_use=year_of_use,
                )
            )
        count_against_caps(node, first_transferred, lookups)
        changes = Changes()
        changes.put(pick.stays)
        changes.put(moved)
        changes.write(uow)
        uow.adjustments.add_many(adjustments)
        uow.audit.append_many(audit)
        uow.unit_log.announce(announcements(_UNIT_EVENTS[status], node.party, moved))
        uow.commit()
    return MovementResult(pick.quantity, tuple(block.to_spec() for block in moved))


# How the federation unit log names units leaving circulation.
_UNIT_EVENTS = {
    BlockStatus.RETIRED: UnitEventKind.USED,
    BlockStatus.CANCELLED: UnitEventKind.CANCELLED,
}


def _oimp_use_refusals(authorisation: Authorisation | None, today: date) -> list[ReasonCode]:
    """Use for OIMP needs a current LoA for OIMP whose use timeframe covers today."""
    if authorisation is None:
        return [ReasonCode.NO_AUTHORISATION]
    if authorisation.revoked:
        return [ReasonCode.AUTHORISATION_REVOKED]
    reasons: list[ReasonCode] = []
    if Purpose.OIMP not in authorisation.purposes:
        reasons.append(ReasonCode.PURPOSE_NOT_AUTHORISED)
    if (authorisation.use_from is not None and today < authorisation.use_from) or (
        authorisation.use_to is not None and today > authorisation.use_to
    ):
        reasons.append(ReasonCode.OUTSIDE_USE_TIMEFRAME)
    return reasons
