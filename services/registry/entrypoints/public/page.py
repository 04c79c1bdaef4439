"""What the public transparency page shows, gathered from the query handlers.

Everything here is the public role's subset: Parties, approaches, vintages,
block identifiers, quantities and LoA terms; never an account, an account
holder or an entity's holding. The template only lays these values out: every
sum, sort, limit and label is decided here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from registry.application import handlers
from registry.application.results import HoldingsTotal
from registry.bootstrap import Node
from registry.domain.adjustments import CorrespondingAdjustment, balances_by_year_and_metric
from registry.domain.authorisations import Authorisation
from registry.domain.errors import DomainError, ReasonCode
from registry.domain.ndc import CaMethod, CaSummary, NdcType
from registry.domain.reconciliation import Finding
from registry.entrypoints.api.dependencies import execute

# The first year of the Paris Agreement's first NDC period; the AEF is reported
# per calendar year from then on (decision 2/CMA.3).
AEF_FIRST_REPORTED_YEAR = 2021
AEF_FORMATS = ("json", "csv", "xlsx")
AEF_PATH_TEMPLATE = "/v1/reports/aef/{year}?format={format}"
# A page a person reads, not an export: the newest entries only; the API and
# the AEF have the rest.
LEDGER_ENTRIES_SHOWN_MAX = 200
TRANSFERS_SHOWN_MAX = 200
# Reconciliation findings shown on the page (open ones first); the API lists more.
FINDINGS_SHOWN_MAX = 100
# Read from the transfer query: enough for both directions' newest rows.
TRANSFERS_LISTED_MAX = 2 * TRANSFERS_SHOWN_MAX

ROLE_COORDINATOR = "COORDINATOR"
DIRECTION_OUT = "out"
DIRECTION_IN = "in"


@dataclass(frozen=True, slots=True)
class LedgerBalance:
    year: int
    metric: str
    quantity: int


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    year: int
    metric: str
    quantity: int
    cause: str
    first_identifier: str
    last_identifier: str
    recorded_at: str
    transfer_id: str


@dataclass(frozen=True, slots=True)
class AuthorisationRow:
    authorisation_id: str
    version: int
    cooperative_approach_id: str
    authorised_on: str
    authorised_parties: str
    purposes: str
    quantity_cap: str
    mitigation_timeframe: str
    use_timeframe: str
    status: str


@dataclass(frozen=True, slots=True)
class TransferBlock:
    first_identifier: str
    last_identifier: str
    quantity: int


@dataclass(frozen=True, slots=True)
class TransferRow:
    transfer_id: str
    direction: str  # DIRECTION_OUT (this Party sent) or DIRECTION_IN (it received)
    counterparty: str
    status: str
    quantity: int
    blocks: tuple[TransferBlock, ...]
    reasons: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class AefYear:
    year: int
    links: tuple[tuple[str, str], ...]  # (format label, href)


# What each number of the CA summary means, in plain words; the public page and
# the README say the same. The applied adjustment depends on the method.
CA_COLUMN_MEANINGS: tuple[tuple[str, str], ...] = (
    (
        "First transferred",
        "ITMOs first transferred by this Party, for their vintage year: added to its emissions"
        " balance, so the reduction is not counted twice.",
    ),
    (
        "Used",
        "ITMOs used towards this Party's NDC, for the year of use: subtracted from its emissions"
        " balance (shown negative).",
    ),
    ("Annual adjustment", "First transferred plus used: the year's net adjustment."),
    (
        "Cumulative",
        "The annual adjustments from the start of the implementation period through the year;"
        " in the last year, the period's total.",
    ),
    (
        "Trajectory",
        "The indicative emissions trajectory (or a budget, year by year) the Party entered,"
        " consistent with its NDC.",
    ),
    (
        "Reported emissions",
        "The emissions (or the metric's level) the Party entered from its inventory;"
        " blank when not entered.",
    ),
    (
        "Adjusted emissions balance",
        "Reported emissions plus the applied adjustment: the figure the Party compares with"
        " its NDC or its trajectory.",
    ),
)
# The applied adjustment's column comes after the cumulative one.
APPLIED_COLUMN_INDEX = 4
APPLIED_MEANINGS: dict[CaMethod, str] = {
    CaMethod.ANNUAL: (
        "Multi-year NDC: each year's own annual adjustment is applied to that year; the"
        " cumulative at the end of the period is reported too."
    ),
    CaMethod.TRAJECTORY: (
        "Single-year NDC, trajectory method: each year's own annual adjustment is applied,"
        " against the indicative trajectory."
    ),
    CaMethod.AVERAGING: (
        "Single-year NDC, averaging method: in the target year, the cumulative adjustment over"
        " the implementation period divided by its number of years. In earlier years, the"
        " average so far (cumulative divided by the years elapsed), shown as indicative only."
    ),
}
SIGN_NOTE = (
    "For a non-GHG metric where a higher value is better (say, renewable MWh), the signs are"
    " reversed: a first transfer lowers the level the Party may claim, a use raises it."
)


@dataclass(frozen=True, slots=True)
class CaYearRow:
    year: int
    first_transferred: int
    used: int
    annual: int
    cumulative: int
    applied: str
    status: str  # "applied" or "indicative"
    trajectory: str
    reported: str
    adjusted: str


@dataclass(frozen=True, slots=True)
class CaMetricTable:
    metric: str
    rows: tuple[CaYearRow, ...]
    period_total: int
    outside_period: int


@dataclass(frozen=True, slots=True)
class CaSection:
    """The CA summary, or why there is none (``ndc_text`` empty: no NDC configured)."""

    ndc_text: str
    meanings: tuple[tuple[str, str], ...]  # (column, what it means), in column order
    tables: tuple[CaMetricTable, ...]
    sign_note: str = SIGN_NOTE


@dataclass(frozen=True, slots=True)
class FindingRow:
    """One reconciliation finding, as the page shows it (Party level, no account)."""

    kind: str
    snapshot_party: str
    parties: str
    units: str
    transfers: str
    detail: str
    since: str
    open: bool


@dataclass(frozen=True, slots=True)
class ReconciliationSection:
    enabled: bool
    parties_compared: tuple[tuple[str, str], ...]  # (Party, snapshot taken at)
    open_findings: int
    findings: tuple[FindingRow, ...]


@dataclass(frozen=True, slots=True)
class PublicPage:
    party: str
    registry_id: str
    generated_at: str
    holdings: tuple[HoldingsTotal, ...]
    ledger_balances: tuple[LedgerBalance, ...]
    ledger_entries: tuple[LedgerEntry, ...]
    ledger_entries_total: int
    authorisations: tuple[AuthorisationRow, ...]
    transfers_out: tuple[TransferRow, ...]
    transfers_in: tuple[TransferRow, ...]
    transfers_total: int
    aef_years: tuple[AefYear, ...]
    ca_section: CaSection = CaSection("", (), ())
    reconciliation: ReconciliationSection = ReconciliationSection(False, (), 0, ())


def build_public_page(node: Node) -> PublicPage:
    registry = execute(node, handlers.get_registry_node)
    now = node.clock.now()
    adjustments = execute(node, handlers.adjustments_for_party, registry.party)
    views = _transfer_views(node)
    transfers = transfer_rows_of(views, registry.party)
    return PublicPage(
        party=registry.party,
        registry_id=registry.registry_id,
        generated_at=_timestamp(now),
        holdings=tuple(execute(node, handlers.holdings_totals)),
        ledger_balances=ledger_balances(adjustments),
        ledger_entries=ledger_entries(adjustments)[:LEDGER_ENTRIES_SHOWN_MAX],
        ledger_entries_total=len(adjustments),
        authorisations=tuple(
            authorisation_row(loa)
            for loa in sorted(
                execute(node, handlers.current_authorisations),
                key=lambda loa: loa.authorisation_id,
            )
        ),
        transfers_out=_newest(transfers, DIRECTION_OUT),
        transfers_in=_newest(transfers, DIRECTION_IN),
        transfers_total=len(transfers),
        aef_years=aef_years(now.year),
        ca_section=ca_section(node),
        reconciliation=reconciliation_section(node),
    )


def reconciliation_section(node: Node) -> ReconciliationSection:
    """What this node found reconciling every Party's holdings snapshot (open ones first)."""
    reconciliation = None if node.messaging is None else node.messaging.reconciliation
    if reconciliation is None:
        return ReconciliationSection(False, (), 0, ())
    report = reconciliation.report(FINDINGS_SHOWN_MAX)
    rows = tuple(
        FindingRow(
            kind=stored.finding.kind.value,
            snapshot_party=stored.party,
            parties=", ".join(stored.finding.parties),
            units=_finding_units(stored.finding),
            transfers=", ".join(stored.finding.transfer_ids),
            detail=stored.finding.detail,
            since=_timestamp(stored.first_seen_at),
            open=stored.open,
        )
        for stored in report.findings
    )
    return ReconciliationSection(
        True,
        tuple((c.party, _timestamp(c.taken_at)) for c in report.parties),
        sum(1 for row in rows if row.open),
        rows,
    )


def _finding_units(finding: Finding) -> str:
    where = "-".join(
        part for part in (finding.cooperative_approach_id, finding.originating_registry_id) if part
    )
    if finding.first_serial is None:
        units = where
    else:
        units = f"{where} {finding.first_serial}-{finding.last_serial}".strip()
    if finding.stated is not None:
        units += f" (stated {finding.stated}, expected {finding.expected})"
    return units


def ca_section(node: Node) -> CaSection:
    try:
        summary = execute(node, handlers.ca_summary)
    except DomainError as error:
        if error.reason is not ReasonCode.NDC_NOT_CONFIGURED:
            raise
        return CaSection("", (), ())
    return ca_section_of(summary)


def ca_section_of(summary: CaSummary) -> CaSection:
    config = summary.ndc.configuration
    period = f"{config.period_start}-{config.period_end}"
    if config.ndc_type is NdcType.SINGLE_YEAR:
        kind = (
            f"a single-year NDC (target year {config.target_year}, implementation period {period})"
        )
    else:
        kind = f"a multi-year NDC (implementation period {period})"
    method = "" if config.method is None else config.method.value.lower()
    text = (
        f"{summary.party} has {kind}, applies corresponding adjustments by the {method} method,"
        f" and reports {', '.join(config.metrics)} (configuration version {summary.ndc.version})."
    )
    applied = "" if config.method is None else APPLIED_MEANINGS[config.method]
    return CaSection(
        ndc_text=text,
        meanings=(
            *CA_COLUMN_MEANINGS[:APPLIED_COLUMN_INDEX],
            ("Applied adjustment", applied),
            *CA_COLUMN_MEANINGS[APPLIED_COLUMN_INDEX:],
        ),
        tables=tuple(
            CaMetricTable(
                metric=found.metric,
                period_total=found.period_total,
                outside_period=found.outside_period,
                rows=tuple(
                    CaYearRow(
                        year=row.year,
                        first_transferred=row.first_transferred,
                        used=row.used,
                        annual=row.annual_adjustment,
                        cumulative=row.cumulative_adjustment,
                        applied=f"{row.applied_adjustment:,}",
                        status="indicative" if row.indicative else "applied",
                        trajectory=_optional_number(row.trajectory_level),
                        reported=_optional_number(row.reported_emissions),
                        adjusted=_optional_number(row.adjusted_emissions_balance),
                    )
                    for row in found.years
                ),
            )
            for found in summary.metrics
        ),
    )


def _optional_number(value: Decimal | None) -> str:
    return "—" if value is None else f"{value:,}"


def _transfer_views(node: Node) -> list[dict[str, Any]]:
    """The latest transfers at this node, as the API shows them."""
    views = node.transfers.list_transfer_views(None, limit=TRANSFERS_LISTED_MAX)
    return [view.to_dict() for view in views]


def _newest(rows: Iterable[TransferRow], direction: str) -> tuple[TransferRow, ...]:
    return tuple(row for row in rows if row.direction == direction)[:TRANSFERS_SHOWN_MAX]


def ledger_balances(adjustments: Iterable[CorrespondingAdjustment]) -> tuple[LedgerBalance, ...]:
    return tuple(
        LedgerBalance(year, metric, quantity)
        for (year, metric), quantity in balances_by_year_and_metric(adjustments).items()
    )


def ledger_entries(adjustments: Iterable[CorrespondingAdjustment]) -> tuple[LedgerEntry, ...]:
    newest_first = sorted(adjustments, key=lambda entry: entry.recorded_at, reverse=True)
    return tuple(
        LedgerEntry(
            year=entry.year,
            metric=entry.metric,
            quantity=entry.quantity,
            cause=entry.cause.value.replace("_", " ").lower(),
            first_identifier=entry.first_identifier,
            last_identifier=entry.last_identifier,
            recorded_at=_timestamp(entry.recorded_at),
            transfer_id=entry.transfer_id or "",
        )
        for entry in newest_first
    )


def authorisation_row(loa: Authorisation) -> AuthorisationRow:
    return AuthorisationRow(
        authorisation_id=loa.authorisation_id,
        version=loa.version,
        cooperative_approach_id=loa.cooperative_approach_id,
        authorised_on=loa.authorised_on.isoformat(),
        authorised_parties=", ".join(sorted(loa.authorised_parties)),
        purposes=", ".join(sorted(loa.purposes)),
        quantity_cap="no cap" if loa.quantity_cap is None else f"{loa.quantity_cap:,}",
        mitigation_timeframe=_timeframe(loa.mitigation_from, loa.mitigation_to),
        use_timeframe=_timeframe(loa.use_from, loa.use_to),
        status="revoked" if loa.revoked else "in force",
    )


def transfer_rows_of(views: Iterable[Mapping[str, Any]], party: str) -> tuple[TransferRow, ...]:
    """Rows from the transfer views as the API shows them.

    A node may hold two views of one transfer (it coordinated it and took part in
    it); the coordinator's is the one that decided, so it is the one shown.
    """
    chosen: dict[str, Mapping[str, Any]] = {}
    for view in views:
        transfer_id = str(view["transfer_id"])
        if transfer_id not in chosen or view["role"] == ROLE_COORDINATOR:
            chosen[transfer_id] = view
    rows = [_transfer_row(view, party) for view in chosen.values()]
    rows.sort(key=lambda row: row.updated_at, reverse=True)
    return tuple(rows)


def _transfer_row(view: Mapping[str, Any], party: str) -> TransferRow:
    sent_here = view["from_party"] == party
    return TransferRow(
        transfer_id=str(view["transfer_id"]),
        direction=DIRECTION_OUT if sent_here else DIRECTION_IN,
        counterparty=str(view["to_party" if sent_here else "from_party"]),
        status=str(view["status"]),
        quantity=int(view["quantity"]),
        blocks=tuple(
            TransferBlock(
                first_identifier=str(block["first_identifier"]),
                last_identifier=str(block["last_identifier"]),
                quantity=int(block["quantity"]),
            )
            for block in view["blocks"] or ()
        ),
        reasons=", ".join(str(reason) for reason in view["reasons"] or ()),
        updated_at=_timestamp(view["updated_at"]),
    )


def aef_years(current_year: int) -> tuple[AefYear, ...]:
    """One entry per reported year, newest first, each linking every AEF format."""
    return tuple(
        AefYear(
            year,
            tuple(
                (format_.upper(), AEF_PATH_TEMPLATE.format(year=year, format=format_))
                for format_ in AEF_FORMATS
            ),
        )
        for year in range(current_year, AEF_FIRST_REPORTED_YEAR - 1, -1)
    )


def _timeframe(start: date | None, end: date | None) -> str:
    if start is None and end is None:
        return "not limited"
    return f"{start.isoformat() if start else '…'} to {end.isoformat() if end else '…'}"


def _timestamp(moment: datetime | str | None) -> str:
    if moment is None:
        return ""
    if isinstance(moment, str):
        return moment
    return moment.isoformat(timespec="seconds")
