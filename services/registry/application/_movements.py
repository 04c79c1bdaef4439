"""Handlers that move units inside this registry: issuance, internal transfer, use, cancellation."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime

from a6wire.identifiers import VINTAGE_MAX, VINTAGE_MIN
from registry.application._common import (
    Changes,
    Lookups,
    load_node,
    lock_usable_account,
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
from registry.domain.adjustments import CorrespondingAdjustment, use_adjustment_if_itmo
from registry.domain.audit import AuditAction, AuditEntry, audit_entry
from registry.domain.authorisations import Authorisation, Purpose
from registry.domain.blocks import BlockAttributes, BlockStatus, SerialBlock
from registry.domain.custody import UnitEventKind, announcements
from registry.domain.errors import DomainError, ReasonCode, refuse_if_any
from registry.domain.first_transfer import (
    FirstTransferAt,
    FirstTransferNotice,
    Moment,
    RetirementAction,
    as_first_transferred,
    cap_quantities,
    cap_refusals,
    first_transfer_at,
    first_transfer_records,
    is_first_transfer,
)
from registry.domain.registry_node import RegistryNode
from registry.domain.selection import UnitSelection, check_selection
from registry.domain.use import NdcPeriod, check_holder, check_use

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
        account = lock_usable_account(uow, command.account_id)
        lookups = Lookups(uow)
        line_attributes = [
            _issuance_attributes(node, line, lookups, now.date()) for line in command.lines
        ]
        # An LoA that names entities restricts who holds its units from the start.
        refuse_if_any(
            [
                reason
                for attributes in line_attributes
                for reason in check_holder(
                    None
                    if attributes.authorisation_id is None
                    else lookups.authorisation_for(node.party, attributes.authorisation_id),
                    attributes,
                    holder_entity=account.holder_entity_id,
                )
            ],
            f"account {command.account_id} may not hold these units",
        )
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
        blocks, adjustments, audit = _issuance_records(
            node, blocks, lookups, now, command.account_id
        )
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
) -> tuple[list[SerialBlock], list[CorrespondingAdjustment], list[AuditEntry]]:
    """Audit every block; where the LoA puts the first transfer at authorisation or
    issuance, record it now and count it against the cap. Returns the blocks as stored."""
    adjustments: list[CorrespondingAdjustment] = []
    audit: list[AuditEntry] = []
    stored: list[SerialBlock] = []
    first_transfers: list[SerialBlock] = []
    for block in blocks:
        authorisation = lookups.authorisation(block)
        if is_first_transfer(
            block.attributes, authorisation, party=node.party, moment=Moment.ISSUANCE, purpose=None
        ):
            approach = lookups.known_approach(block.attributes.cooperative_approach_id)
            # Only an LoA for OIMP puts the first transfer at issuance.
            records = first_transfer_records(
                node.party, block, approach, at=now, purpose=Purpose.OIMP
            )
            block = records.block
            adjustments.append(records.adjustment)
            audit.append(audit_entry(block, AuditAction.ISSUANCE, at=now, to_account_id=account_id))
            audit.append(records.audit)
            first_transfers.append(block)
        else:
            audit.append(audit_entry(block, AuditAction.ISSUANCE, at=now, to_account_id=account_id))
        stored.append(block)
    count_against_caps(node, first_transfers, lookups)
    return stored, adjustments, audit


def count_against_caps(
    node: RegistryNode, first_transfers: list[SerialBlock], lookups: Lookups
) -> None:
    """Count first transfers against their LoAs' caps, refusing any that would exceed one."""
    for authorisation_id, quantity in cap_quantities(first_transfers).items():
        counted = lookups.counted_quantity(authorisation_id)
        refuse_if_any(
            cap_refusals(
                lookups.authorisation_for(node.party, authorisation_id),
                counted_quantity=counted,
                quantity=quantity,
            ),
            f"{authorisation_id}: {counted} counted against its cap, {quantity} more requested",
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
        accounts = {
            account_id: lock_usable_account(uow, account_id)
            for account_id in sorted((command.from_account_id, command.to_account_id))
        }
        destination = accounts[command.to_account_id]
        lookups = Lookups(uow)

        def refuse(block: SerialBlock) -> list[ReasonCode]:
            # An LoA's entity list follows the units inside a registry too.
            return check_holder(
                lookups.authorisation(block),
                block.attributes,
                holder_entity=destination.holder_entity_id,
            )

        pick = pick_units(uow, command.from_account_id, command.selection, refuse)
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
    return _retire(
        uow,
        clock,
        command.account_id,
        command.selection,
        AccountKind.NDC_USE,
        year_of_use=command.year_of_use,
        ndc_use=True,
    )


def use_for_oimp(uow: UnitOfWork, clock: Clock, command: UseForOimp) -> MovementResult:
    # The AEF reports a year of use for OIMP too; without one given, it is this year.
    year_of_use = clock.now().year if command.year_of_use is None else command.year_of_use
    return _retire(
        uow,
        clock,
        command.account_id,
        command.selection,
        AccountKind.OIMP_USE,
        year_of_use=year_of_use,
        notices_delivered=command.notices_delivered,
    )


def cancel_voluntarily(uow: UnitOfWork, clock: Clock, command: CancelVoluntarily) -> MovementResult:
    return _retire(
        uow,
        clock,
        command.account_id,
        command.selection,
        AccountKind.VOLUNTARY_CANCELLATION,
        notices_delivered=command.notices_delivered,
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


@dataclass(frozen=True, slots=True)
class _Retirement:
    """One retirement command as the handler needs it: what, where to, for which year."""

    kind: AccountKind
    account_id: str
    target_account_id: str
    year_of_use: int | None
    ndc_period: NdcPeriod | None
    at: datetime

    @property
    def purpose(self) -> Purpose | None:
        return _RETIREMENT_PURPOSES.get(self.kind)


def _retire(
    uow: UnitOfWork,
    clock: Clock,
    account_id: str,
    selection: UnitSelection,
    kind: AccountKind,
    *,
    year_of_use: int | None = None,
    ndc_use: bool = False,
    notices_delivered: bool = False,
) -> MovementResult:
    """Load, ask the domain (use rules, first transfer, adjustment), save.

    ``notices_delivered`` says the caller writes the result's first-transfer notices
    to the outbox in this transaction; without it, a retirement that is another
    Party's first transfer is refused (``FIRST_TRANSFER_NOTICE_UNDELIVERABLE``).
    """
    if year_of_use is not None and not VINTAGE_MIN <= year_of_use <= VINTAGE_MAX:
        raise DomainError(ReasonCode.INVALID_TIMEFRAME, f"year of use {year_of_use}")
    with uow:
        node = load_node(uow)
        refuse_if_any(check_selection(selection), "nothing to retire")
        holder = lock_usable_account(uow, account_id)
        ndc_period = _ndc_period(uow, node.party) if ndc_use else None
        retirement = _Retirement(
            kind,
            account_id,
            retirement_account_id(node.registry_id, kind),
            year_of_use,
            ndc_period,
            clock.now(),
        )
        lookups = Lookups(uow)

        def refuse(block: SerialBlock) -> list[ReasonCode]:
            return _use_refusals(node, lookups, holder.holder_entity_id, retirement, block)

        pick = pick_units(uow, account_id, selection, refuse)
        records = _RetirementRecords()
        for block in pick.taken:
            records.add(node, lookups, retirement, block)
        count_against_caps(node, records.first_transfers, lookups)
        notices = records.notices(node, lookups, retirement)
        if notices and not notices_delivered:
            raise DomainError(
                ReasonCode.FIRST_TRANSFER_NOTICE_UNDELIVERABLE,
                "these units' first transfer is their use or cancellation, which another "
                "Party records on a signed notice; this node cannot send one",
            )
        changes = Changes()
        changes.put(pick.stays)
        changes.put(records.moved)
        changes.write(uow)
        uow.adjustments.add_many(records.adjustments)
        uow.audit.append_many(records.audit)
        # Public, Party level, in this transaction: units leaving circulation.
        uow.unit_log.announce(
            announcements(_UNIT_EVENTS[retirement.kind], node.party, records.moved)
        )
        uow.commit()
    return MovementResult(
        pick.quantity,
        tuple(block.to_spec() for block in records.moved),
        first_transfer_notices=notices,
    )


# How the federation unit log names units leaving circulation.
_UNIT_EVENTS = {
    AccountKind.NDC_USE: UnitEventKind.USED,
    AccountKind.OIMP_USE: UnitEventKind.USED,
    AccountKind.VOLUNTARY_CANCELLATION: UnitEventKind.CANCELLED,
    AccountKind.OMGE_CANCELLATION: UnitEventKind.CANCELLED,
}


def _ndc_period(uow: UnitOfWork, party: str) -> NdcPeriod | None:
    """The implementation period of the Party's NDC as configured now, if it has one."""
    record = uow.ndc.current(party)
    if record is None:
        return None
    return (record.configuration.period_start, record.configuration.period_end)


def _use_refusals(
    node: RegistryNode,
    lookups: Lookups,
    holder_entity: str | None,
    retirement: _Retirement,
    block: SerialBlock,
) -> list[ReasonCode]:
    purpose, year_of_use = retirement.purpose, retirement.year_of_use
    if purpose is None or year_of_use is None:
        return []  # a cancellation serves no purpose that an LoA must authorise
    return check_use(
        lookups.authorisation(block),
        block.attributes,
        purpose=purpose,
        using_party=node.party,
        holder_entity=holder_entity,
        on=retirement.at.date(),
        year_of_use=year_of_use,
        ndc_period=retirement.ndc_period,
    )


@dataclass
class _RetirementRecords:
    """What a retirement writes, block by block."""

    moved: list[SerialBlock] = field(default_factory=list)
    adjustments: list[CorrespondingAdjustment] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    first_transfers: list[SerialBlock] = field(default_factory=list)
    # Per (first transferring Party, LoA): pieces whose first transfer another Party records.
    noticed: defaultdict[tuple[str, str], list[SerialBlock]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def add(
        self, node: RegistryNode, lookups: Lookups, retirement: _Retirement, block: SerialBlock
    ) -> None:
        action, status = _RETIREMENT_ACTIONS[retirement.kind]
        at, year_of_use = retirement.at, retirement.year_of_use
        piece = block.moved(account_id=retirement.target_account_id, status=status)
        approach = lookups.known_approach(block.attributes.cooperative_approach_id)
        if retirement.kind is AccountKind.NDC_USE and year_of_use is not None:
            adjustment = use_adjustment_if_itmo(
                node.party, piece, approach, year_of_use=year_of_use, at=at
            )
            self.adjustments.extend([] if adjustment is None else [adjustment])
        elif retirement.kind in _FIRST_TRANSFER_RETIREMENTS:
            piece = self._first_transfer(node, lookups, retirement, piece)
        self.moved.append(piece)
        self.audit.append(
            audit_entry(
                piece,
                action,
                at=at,
                from_account_id=retirement.account_id,
                to_account_id=retirement.target_account_id,
                purpose=retirement.purpose,
                year_of_use=year_of_use,
            )
        )

    def _first_transfer(
        self, node: RegistryNode, lookups: Lookups, retirement: _Retirement, piece: SerialBlock
    ) -> SerialBlock:
        """Record the first transfer this use or cancellation is, here or by notice."""
        at = first_transfer_at(
            piece.attributes,
            lookups.authorisation(piece),
            party=node.party,
            moment=Moment.USE_OR_CANCELLATION,
            purpose=retirement.purpose,
        )
        if at is FirstTransferAt.NONE:
            return piece
        if at is FirstTransferAt.BY_NOTICE:
            # Flagged here too: the units' first transfer happens now, recorded there.
            flagged = as_first_transferred(piece)
            key = (
                flagged.attributes.first_transferring_party,
                str(flagged.attributes.authorisation_id),
            )
            self.noticed[key].append(flagged)
            return flagged
        approach = lookups.known_approach(piece.attributes.cooperative_approach_id)
        records = first_transfer_records(
            node.party, piece, approach, at=retirement.at, purpose=Purpose.OIMP
        )
        self.adjustments.append(records.adjustment)
        self.audit.append(records.audit)
        self.first_transfers.append(records.block)
        return records.block

    def notices(
        self, node: RegistryNode, lookups: Lookups, retirement: _Retirement
    ) -> tuple[FirstTransferNotice, ...]:
        """One notice per first transferring Party and LoA whose units' first transfer
        this retirement is; the year is the year of use (for a cancellation, this year)."""
        year = retirement.at.year if retirement.year_of_use is None else retirement.year_of_use
        notices: list[FirstTransferNotice] = []
        for (party, authorisation_id), pieces in sorted(self.noticed.items()):
            authorisation = lookups.authorisation_for(party, authorisation_id)
            assert authorisation is not None  # found for these very pieces
            notices.append(
                FirstTransferNotice(
                    notice_id=str(uuid.uuid4()),
                    authorising_party=party,
                    noticing_party=node.party,
                    authorisation_id=authorisation_id,
                    authorisation_version=authorisation.version,
                    action=_FIRST_TRANSFER_RETIREMENTS[retirement.kind],
                    year=year,
                    occurred_at=retirement.at,
                    blocks=tuple(piece.to_spec() for piece in sorted(pieces, key=lambda b: b.key)),
                )
            )
        return tuple(notices)


# Where an OIMP authorisation puts the first transfer at "use or cancellation".
_FIRST_TRANSFER_RETIREMENTS = {
    AccountKind.OIMP_USE: RetirementAction.USE_FOR_OIMP,
    AccountKind.VOLUNTARY_CANCELLATION: RetirementAction.CANCELLATION,
}
