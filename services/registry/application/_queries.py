"""Read-only handlers: each opens a unit of work, reads, and commits nothing."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from a6wire.identifiers import VINTAGE_MAX, VINTAGE_MIN
from registry.application._common import load_node
from registry.application._outgoing import reservation_result
from registry.application.ports import Clock, UnitOfWork
from registry.application.results import (
    HoldingsTotal,
    IncomingResult,
    LedgerTotals,
    ReportSource,
    ReservationResult,
)
from registry.domain.accounts import Account
from registry.domain.adjustments import CorrespondingAdjustment
from registry.domain.approaches import CooperativeApproach
from registry.domain.audit import AuditAction, AuditEntry
from registry.domain.authorisations import Authorisation
from registry.domain.blocks import BlockStatus, SerialBlock
from registry.domain.errors import DomainError, ReasonCode
from registry.domain.ndc import CaSummary, NdcRecord, summarise
from registry.domain.registry_node import RegistryNode
from registry.domain.transfers import Reservation, ReservationState, TransferDirection


def get_registry_node(uow: UnitOfWork, clock: Clock) -> RegistryNode:
    with uow:
        return load_node(uow)


def get_account(uow: UnitOfWork, clock: Clock, account_id: str) -> Account:
    with uow:
        account = uow.accounts.get(account_id)
    if account is None:
        raise DomainError(ReasonCode.UNKNOWN_ACCOUNT, f"no account {account_id}")
    return account


def list_accounts(uow: UnitOfWork, clock: Clock) -> list[Account]:
    with uow:
        return uow.accounts.list()


def account_blocks(uow: UnitOfWork, clock: Clock, account_id: str) -> list[SerialBlock]:
    """Every block recorded in the account, any status (holdings, locks, retirements)."""
    with uow:
        if uow.accounts.get(account_id) is None:
            raise DomainError(ReasonCode.UNKNOWN_ACCOUNT, f"no account {account_id}")
        return uow.blocks.list_account(account_id)


def account_balance(uow: UnitOfWork, clock: Clock, account_id: str) -> dict[BlockStatus, int]:
    with uow:
        if uow.accounts.get(account_id) is None:
            raise DomainError(ReasonCode.UNKNOWN_ACCOUNT, f"no account {account_id}")
        return {
            status: uow.blocks.quantity_in_account(account_id, status) for status in BlockStatus
        }


def list_cooperative_approaches(uow: UnitOfWork, clock: Clock) -> list[CooperativeApproach]:
    with uow:
        return uow.approaches.list()


def authorisation_history(
    uow: UnitOfWork, clock: Clock, authorisation_id: str, authorising_party: str | None = None
) -> list[Authorisation]:
    """Every version of an LoA, oldest first; this Party's own unless another is named."""
    with uow:
        party = authorising_party or load_node(uow).party
        return uow.authorisations.history(party, authorisation_id)


def ledger_totals(uow: UnitOfWork, clock: Clock) -> LedgerTotals:
    with uow:
        by_status = uow.blocks.quantity_by_status()
        issued = uow.audit.total_quantity(AuditAction.ISSUANCE)
        acquired = uow.audit.total_quantity(AuditAction.ACQUISITION)
    return LedgerTotals(
        held=by_status.get(BlockStatus.HELD, 0),
        reserved=by_status.get(BlockStatus.RESERVED, 0),
        incoming=by_status.get(BlockStatus.INCOMING, 0),
        retired=by_status.get(BlockStatus.RETIRED, 0),
        cancelled=by_status.get(BlockStatus.CANCELLED, 0),
        transferred_out=by_status.get(BlockStatus.TRANSFERRED_OUT, 0),
        issued=issued,
        acquired=acquired,
    )


def adjustment_balance(uow: UnitOfWork, clock: Clock, party: str, year: int, metric: str) -> int:
    with uow:
        return uow.adjustments.balance(party, year, metric)


def adjustments_for_party(
    uow: UnitOfWork, clock: Clock, party: str
) -> list[CorrespondingAdjustment]:
    with uow:
        return uow.adjustments.for_party(party)


def ndc_configuration(uow: UnitOfWork, clock: Clock) -> NdcRecord:
    """The current version of this Party's NDC configuration."""
    with uow:
        return _current_ndc(uow, load_node(uow).party)


def ca_summary(uow: UnitOfWork, clock: Clock) -> CaSummary:
    """This Party's adjustments per year and metric, by its NDC's method (registry.domain.ndc)."""
    with uow:
        party = load_node(uow).party
        ndc = _current_ndc(uow, party)
        entries = uow.adjustments.for_party(party)
    return summarise(ndc, entries)


def _current_ndc(uow: UnitOfWork, party: str) -> NdcRecord:
    record = uow.ndc.current(party)
    if record is None:
        raise DomainError(
            ReasonCode.NDC_NOT_CONFIGURED, f"{party} has not configured its NDC in this registry"
        )
    return record


def audit_trail(
    uow: UnitOfWork, clock: Clock, originating_registry_id: str, first_serial: int, last_serial: int
) -> list[AuditEntry]:
    with uow:
        return uow.audit.for_block(originating_registry_id, first_serial, last_serial)


def get_transfer(
    uow: UnitOfWork, clock: Clock, transfer_id: str
) -> ReservationResult | IncomingResult:
    with uow:
        reservation = uow.reservations.get(transfer_id)
        if reservation is None:
            raise DomainError(ReasonCode.UNKNOWN_TRANSFER, f"no transfer {transfer_id}")
        if reservation.direction is TransferDirection.OUTGOING:
            return reservation_result(uow, reservation)
        blocks = sorted(uow.blocks.for_transfer(transfer_id), key=lambda b: b.key)
        return IncomingResult(
            transfer_id,
            reservation.state,
            reservation.quantity,
            tuple(block.to_spec() for block in blocks),
        )


def pending_transfers(uow: UnitOfWork, clock: Clock) -> list[Reservation]:
    """Every reservation not yet finalised or released, for recovery after a restart."""
    with uow:
        return uow.reservations.list(state=ReservationState.PENDING)


def current_authorisations(
    uow: UnitOfWork, clock: Clock, authorising_party: str | None = None
) -> list[Authorisation]:
    """The current version of every LoA of this Party (or of the Party named)."""
    with uow:
        party = authorising_party or load_node(uow).party
        return uow.authorisations.list_current(party)


# Block statuses summed into each column of the holdings totals. RESERVED units
# are still held here until a cross-border transfer commits; INCOMING ones are not
# held yet, and TRANSFERRED_OUT ones are gone.
_HOLDINGS_COLUMNS = {
    BlockStatus.HELD: "held",
    BlockStatus.RESERVED: "held",
    BlockStatus.RETIRED: "retired",
    BlockStatus.CANCELLED: "cancelled",
}


def holdings_totals(
    uow: UnitOfWork,
    clock: Clock,
    cooperative_approach_id: str | None = None,
    vintage: int | None = None,
) -> list[HoldingsTotal]:
    """Units per cooperative approach, vintage and metric, summed over every account.

    The store sums by class (GROUP BY); only the few class rows are folded here.
    """
    with uow:
        classes = uow.blocks.quantities_by_class()
    sums: defaultdict[tuple[str, int, str], dict[str, int]] = defaultdict(
        lambda: {"held": 0, "retired": 0, "cancelled": 0}
    )
    for row in classes:
        column = _HOLDINGS_COLUMNS.get(row.status)
        if (
            column is None
            or cooperative_approach_id not in (None, row.cooperative_approach_id)
            or vintage not in (None, row.vintage)
        ):
            continue
        sums[(row.cooperative_approach_id, row.vintage, row.metric)][column] += row.quantity
    return [
        HoldingsTotal(approach, year, metric, **columns)
        for (approach, year, metric), columns in sorted(sums.items())
    ]


def report_source(uow: UnitOfWork, clock: Clock, reported_year: int) -> ReportSource:
    """Everything the AEF of ``reported_year`` needs, read in one transaction."""
    if not VINTAGE_MIN <= reported_year <= VINTAGE_MAX:
        raise DomainError(ReasonCode.INVALID_TIMEFRAME, f"reported year {reported_year}")
    year_end = datetime(reported_year + 1, 1, 1, tzinfo=UTC)
    with uow:
        node = load_node(uow)
        return ReportSource(
            node=node,
            reported_year=reported_year,
            read_at=clock.now(),
            accounts=tuple(uow.accounts.list()),
            approaches=tuple(uow.approaches.list()),
            authorisations=tuple(uow.authorisations.list_versions(node.party)),
            audit=tuple(uow.audit.between(None, year_end)),
            ndc=uow.ndc.current(node.party),
        )
