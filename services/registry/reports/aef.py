"""The Agreed Electronic Format (6/CMA.4): five tables of one reported year, from the ledger.

Pure: it takes the values a query handler read (``ReportSource``'s fields) and
returns plain rows. Every table is a list of flat rows with the columns named in
``TABLE_COLUMNS``, so JSON, CSV and XLSX carry exactly the same data.

Table 3 (actions) follows DOMAIN.md's summary of decision 6/CMA.4, annex II: every
row carries the block's first and last unique identifier (annex I, para 5), the
quantity in its metric and in tCO2e with the conversion factor, every block
attribute (cooperative approach, vintage, sector, activity type, mitigation type,
GWP values, first transferring Party), the authorisation id and version, whether
the action is (or, for an acquisition, was brought by) a first transfer, the
Parties involved, the purpose and, for a use, the year of use. Only ITMOs are
reported: units without an authorisation are not ITMOs (2/CMA.3 annex, para 1),
so their movements are not Article 6 actions. Where the decision texts and this
list differ, the texts win.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from a6wire.identifiers import IdentifierError, parse_unique_identifier
from registry.domain.accounts import Account
from registry.domain.approaches import CooperativeApproach
from registry.domain.audit import AuditAction, AuditEntry
from registry.domain.authorisations import Authorisation, FirstTransferDefinition, Purpose
from registry.domain.ndc import NdcConfiguration
from registry.domain.registry_node import RegistryNode
from registry.reports.holdings import holdings_at

AEF_FORMAT = "a6-aef"
AEF_FORMAT_VERSION = 1
SUBMISSION_VERSION_DEFAULT = 1
# Every date in the AEF: ISO 8601, UTC, to the second, with a literal Z.
ISO_8601_UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
ACTION_SEQUENCE_DIGITS = 6


class Table(StrEnum):
    SUBMISSION = "submission"
    AUTHORISATIONS = "authorisations"
    ACTIONS = "actions"
    HOLDINGS = "holdings"
    AUTHORISED_ENTITIES = "authorised_entities"


class ActionType(StrEnum):
    AUTHORISATION = "authorisation"
    ISSUANCE = "issuance"
    FIRST_TRANSFER = "first_transfer"
    TRANSFER = "transfer"
    ACQUISITION = "acquisition"
    USE_TOWARDS_NDC = "use_towards_ndc"
    USE_FOR_OIMP = "use_for_oimp"
    CANCELLATION = "cancellation"
    OMGE_CANCELLATION = "omge_cancellation"


TABLE_COLUMNS: dict[Table, tuple[str, ...]] = {
    Table.SUBMISSION: (
        "party",
        "registry_id",
        "submission_version",
        "reported_year",
        # From the Party's configured NDC (PUT /v1/ndc); empty until it is set.
        "ndc_type",
        "ndc_period_from",
        "ndc_period_to",
        "ndc_target_year",
        "ca_method",
        "ndc_metrics",
        "generated_at",
    ),
    Table.AUTHORISATIONS: (
        "authorisation_id",
        "version",
        "authorising_party",
        "authorised_on",
        "cooperative_approach_id",
        "authorised_parties",
        "authorised_entities",
        "purposes",
        "quantity_cap",
        "mitigation_from",
        "mitigation_to",
        "use_from",
        "use_to",
        "oimp_first_transfer",
        "terms",
        "revoked",
    ),
    Table.ACTIONS: (
        "action_id",
        "action_type",
        "action_date",
        "first_identifier",
        "last_identifier",
        "quantity",
        "metric",
        "quantity_tco2e",
        "conversion_factor",
        "cooperative_approach_id",
        "vintage",
        "sector",
        "activity_type",
        "mitigation_type",
        "gwp_values",
        "first_transferring_party",
        "first_transfer",
        "transferring_party",
        "acquiring_party",
        "authorised_parties",
        "using_party",
        "purpose",
        "year_of_use",
        "authorisation_id",
        "authorisation_version",
        "transfer_id",
    ),
    Table.HOLDINGS: (
        "account_type",
        "cooperative_approach_id",
        "vintage",
        "metric",
        "quantity",
        "as_at",
    ),
    Table.AUTHORISED_ENTITIES: (
        "entity_id",
        "authorisation_id",
        "version",
        "authorising_party",
        "cooperative_approach_id",
    ),
}

# Multi-valued cells (authorised Parties, entities, purposes) are joined with this.
LIST_SEPARATOR = ";"
# The purpose column of a cancellation row: OMGE, or a voluntary cancellation, which
# serves no purpose an LoA authorises (it is neither use towards an NDC nor for OIMP).
OMGE_PURPOSE = "OMGE"
VOLUNTARY_CANCELLATION_PURPOSE = "VOLUNTARY"

Row = dict[str, Any]


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(ISO_8601_UTC_FORMAT)


@dataclass(frozen=True, slots=True)
class AefReport:
    """The five tables of one Party's AEF for one year, as plain rows."""

    tables: dict[Table, list[Row]]

    @property
    def party(self) -> str:
        return str(self.tables[Table.SUBMISSION][0]["party"])

    def to_document(self) -> dict[str, Any]:
        """The JSON form: a format tag and the tables by name, rows in column order."""
        return {
            "format": AEF_FORMAT,
            "format_version": AEF_FORMAT_VERSION,
            "tables": {
                table.value: [_ordered(row, TABLE_COLUMNS[table]) for row in rows]
                for table, rows in self.tables.items()
            },
        }


def _ordered(row: Row, columns: Sequence[str]) -> Row:
    return {column: row.get(column) for column in columns}


def build_aef(
    *,
    node: RegistryNode,
    reported_year: int,
    generated_at: datetime,
    accounts: Iterable[Account],
    approaches: Iterable[CooperativeApproach],
    authorisations: Iterable[Authorisation],
    audit: Iterable[AuditEntry],
    submission_version: int = SUBMISSION_VERSION_DEFAULT,
    ndc: NdcConfiguration | None = None,
) -> AefReport:
    """The AEF of ``reported_year``; ``audit`` holds every entry before that year's end.

    Table 1 states the NDC the Party configured: type, implementation period,
    target year, corresponding-adjustment method and metrics; without one, those
    cells are empty.
    """
    year_start = datetime(reported_year, 1, 1, tzinfo=UTC)
    year_end = datetime(reported_year + 1, 1, 1, tzinfo=UTC)
    entries = [entry for entry in audit if entry.occurred_at < year_end]
    versions = [
        loa
        for loa in authorisations
        if loa.authorising_party == node.party and loa.authorised_on < year_end.date()
    ]
    current = _current_versions(versions)
    by_id = {approach.cooperative_approach_id: approach for approach in approaches}
    submission = {
        "party": node.party,
        "registry_id": node.registry_id,
        "submission_version": submission_version,
        "reported_year": reported_year,
        **_ndc_cells(ndc),
        "generated_at": iso_utc(generated_at),
    }
    in_year = [entry for entry in entries if entry.occurred_at >= year_start]
    return AefReport(
        {
            Table.SUBMISSION: [submission],
            Table.AUTHORISATIONS: [_authorisation_row(loa) for loa in versions],
            Table.ACTIONS: action_rows(
                node, reported_year, in_year, ActionContext(current, _by_version(versions), by_id)
            ),
            Table.HOLDINGS: _holding_rows(entries, accounts, year_end),
            Table.AUTHORISED_ENTITIES: _entity_rows(current.values()),
        }
    )


def _ndc_cells(ndc: NdcConfiguration | None) -> Row:
    if ndc is None:
        return {}
    return {
        "ndc_type": ndc.ndc_type.value,
        "ndc_period_from": ndc.period_start,
        "ndc_period_to": ndc.period_end,
        "ndc_target_year": ndc.target_year,
        "ca_method": None if ndc.method is None else ndc.method.value,
        "ndc_metrics": _joined(ndc.metrics),
    }


def _by_version(versions: Iterable[Authorisation]) -> dict[tuple[str, int], Authorisation]:
    return {(loa.authorisation_id, loa.version): loa for loa in versions}


def _current_versions(versions: Iterable[Authorisation]) -> dict[str, Authorisation]:
    current: dict[str, Authorisation] = {}
    for loa in versions:
        known = current.get(loa.authorisation_id)
        if known is None or known.version < loa.version:
            current[loa.authorisation_id] = loa
    return dict(sorted(current.items()))


def _joined(values: Iterable[str]) -> str:
    return LIST_SEPARATOR.join(sorted(values))


def _iso_date(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())


def _authorisation_row(loa: Authorisation) -> Row:
    return {
        "authorisation_id": loa.authorisation_id,
        "version": loa.version,
        "authorising_party": loa.authorising_party,
        "authorised_on": loa.authorised_on.isoformat(),
        "cooperative_approach_id": loa.cooperative_approach_id,
        "authorised_parties": _joined(loa.authorised_parties),
        "authorised_entities": _joined(loa.authorised_entities),
        "purposes": _joined(purpose.value for purpose in loa.purposes),
        "quantity_cap": loa.quantity_cap,
        "mitigation_from": _iso_date(loa.mitigation_from),
        "mitigation_to": _iso_date(loa.mitigation_to),
        "use_from": _iso_date(loa.use_from),
        "use_to": _iso_date(loa.use_to),
        "oimp_first_transfer": (
            None if loa.oimp_first_transfer is None else loa.oimp_first_transfer.value
        ),
        "terms": loa.terms,
        "revoked": loa.revoked,
    }


def _entity_rows(current: Iterable[Authorisation]) -> list[Row]:
    return [
        {
            "entity_id": entity,
            "authorisation_id": loa.authorisation_id,
            "version": loa.version,
            "authorising_party": loa.authorising_party,
            "cooperative_approach_id": loa.cooperative_approach_id,
        }
        for loa in current
        if not loa.revoked
        for entity in sorted(loa.authorised_entities)
    ]


def _holding_rows(
    entries: Sequence[AuditEntry], accounts: Iterable[Account], year_end: datetime
) -> list[Row]:
    kinds = {account.account_id: account.kind for account in accounts}
    as_at = iso_utc(year_end)
    return [
        {
            "account_type": key.account_kind.value,
            "cooperative_approach_id": key.cooperative_approach_id,
            "vintage": key.vintage,
            "metric": key.metric,
            "quantity": quantity,
            "as_at": as_at,
        }
        for key, quantity in holdings_at(entries, kinds).items()
    ]


# Audit actions that are AEF actions by themselves; the rest are handled below or
# are internal steps (reservations, pending credit) the AEF does not report.
_DIRECT_ACTIONS = {
    AuditAction.ISSUANCE: ActionType.ISSUANCE,
    AuditAction.TRANSFER_OUT: ActionType.TRANSFER,
    AuditAction.ACQUISITION: ActionType.ACQUISITION,
    AuditAction.USE_TOWARDS_NDC: ActionType.USE_TOWARDS_NDC,
    AuditAction.USE_FOR_OIMP: ActionType.USE_FOR_OIMP,
    AuditAction.VOLUNTARY_CANCELLATION: ActionType.CANCELLATION,
    AuditAction.OMGE_CANCELLATION: ActionType.OMGE_CANCELLATION,
}


def _block_key(entry: AuditEntry) -> tuple[str | None, str, int, int]:
    return (entry.transfer_id, entry.originating_registry_id, entry.first_serial, entry.last_serial)


@dataclass(frozen=True, slots=True)
class ActionContext:
    """What an action row needs besides its audit entry: this Party's LoAs and the approaches."""

    current: dict[str, Authorisation]
    versions: dict[tuple[str, int], Authorisation]
    approaches: dict[str, CooperativeApproach]


def action_rows(
    node: RegistryNode,
    reported_year: int,
    entries: Sequence[AuditEntry],
    context: ActionContext,
) -> list[Row]:
    """Table 3: one row per reportable audit entry of the year, in the order recorded.

    A cross-border first transfer is audited twice (FIRST_TRANSFER, then
    TRANSFER_OUT of the same block and transfer); the AEF reports it once, as a
    first transfer to the acquiring Party. Entries of units without an
    authorisation are left out: those units are not ITMOs.
    """
    first_transfers_out = {
        _block_key(entry)
        for entry in entries
        if entry.action is AuditAction.FIRST_TRANSFER and entry.transfer_id is not None
    }
    rows: list[Row] = []
    for entry in entries:
        if entry.authorisation_id is None and entry.cooperative_approach_id is not None:
            continue  # recorded without an LoA (entries before 0003 do not say: kept)
        if entry.action is AuditAction.TRANSFER_OUT and _block_key(entry) in first_transfers_out:
            continue
        if entry.action is AuditAction.FIRST_TRANSFER:
            action_type = _first_transfer_type(entry, context.current)
        elif entry.action in _DIRECT_ACTIONS:
            action_type = _DIRECT_ACTIONS[entry.action]
        else:
            continue
        row = _action_row(node, entry, action_type, context)
        row["action_id"] = (
            f"{node.registry_id}-{reported_year}-{len(rows) + 1:0{ACTION_SEQUENCE_DIGITS}d}"
        )
        rows.append(row)
    return rows


def _first_transfer_type(entry: AuditEntry, current: dict[str, Authorisation]) -> ActionType:
    """An LoA that puts the first transfer at authorisation makes the row an authorisation."""
    loa = None if entry.authorisation_id is None else current.get(entry.authorisation_id)
    if (
        entry.transfer_id is None
        and loa is not None
        and loa.oimp_first_transfer is FirstTransferDefinition.AUTHORISATION
    ):
        return ActionType.AUTHORISATION
    return ActionType.FIRST_TRANSFER


_FIRST_TRANSFER_TYPES = (ActionType.FIRST_TRANSFER, ActionType.AUTHORISATION)


def _action_row(
    node: RegistryNode, entry: AuditEntry, action_type: ActionType, context: ActionContext
) -> Row:
    approach_id, vintage, first_party = _unit_class(entry)
    approach = context.approaches.get(approach_id or "")
    row: Row = {
        "action_type": action_type.value,
        "action_date": iso_utc(entry.occurred_at),
        "first_identifier": entry.first_identifier,
        "last_identifier": entry.last_identifier,
        "quantity": entry.quantity,
        "metric": entry.metric or (None if approach is None else approach.metric),
        **_tco2e(entry.quantity, approach),
        "cooperative_approach_id": approach_id,
        "vintage": vintage,
        "sector": entry.sector,
        "activity_type": entry.activity_type,
        "mitigation_type": entry.mitigation_type,
        "gwp_values": entry.gwp_values,
        "first_transferring_party": first_party,
        "first_transfer": _first_transfer_flag(entry, action_type),
        "transferring_party": None,
        "acquiring_party": None,
        "authorised_parties": None,
        "using_party": None,
        "purpose": None if entry.purpose is None else entry.purpose.value,
        "year_of_use": entry.year_of_use,
        "authorisation_id": entry.authorisation_id,
        "authorisation_version": entry.authorisation_version,
        "transfer_id": entry.transfer_id,
    }
    if action_type is ActionType.ACQUISITION:
        row["transferring_party"] = entry.counterparty_party
        row["acquiring_party"] = node.party
    elif action_type in (ActionType.TRANSFER, *_FIRST_TRANSFER_TYPES):
        row["transferring_party"] = node.party
        row["acquiring_party"] = entry.counterparty_party
    elif action_type is not ActionType.ISSUANCE:
        row["using_party"] = node.party
    if action_type in _FIRST_TRANSFER_TYPES:
        # A first transfer at authorisation or issuance (OIMP) has no acquiring Party
        # yet: the row names the Parties the LoA version authorises instead.
        loa = context.versions.get((entry.authorisation_id or "", entry.authorisation_version or 0))
        row["authorised_parties"] = None if loa is None else _joined(loa.authorised_parties)
        if row["purpose"] is None:
            # Before migration 0003 the purpose was not recorded; a first transfer
            # outside a cross-border transfer only happens for OIMP.
            row["purpose"] = Purpose.OIMP.value
    if action_type is ActionType.OMGE_CANCELLATION and row["purpose"] is None:
        row["purpose"] = OMGE_PURPOSE
    if action_type is ActionType.CANCELLATION and row["purpose"] is None:
        row["purpose"] = VOLUNTARY_CANCELLATION_PURPOSE
    return row


def _first_transfer_flag(entry: AuditEntry, action_type: ActionType) -> bool | None:
    """Whether the row is a first transfer; an acquisition says whether the transfer that
    brought the units was their first (None when recorded before migration 0008)."""
    if action_type is ActionType.ACQUISITION:
        return entry.first_transfer
    return action_type in _FIRST_TRANSFER_TYPES


def _tco2e(quantity: int, approach: CooperativeApproach | None) -> Row:
    """The quantity in tCO2e and the factor used, as exact decimal strings.

    A GHG metric converts at 1; a non-GHG metric at the factor its cooperative
    approach states, or not at all (None, which the checker refuses).
    """
    factor = None if approach is None else approach.conversion_factor
    if factor is None:
        return {"quantity_tco2e": None, "conversion_factor": None}
    return {"quantity_tco2e": str(quantity * factor), "conversion_factor": str(factor)}


def _unit_class(entry: AuditEntry) -> tuple[str | None, int | None, str | None]:
    """Approach, vintage, first transferring Party: recorded, or read from the identifier."""
    if entry.cooperative_approach_id is not None:
        return entry.cooperative_approach_id, entry.vintage, entry.first_transferring_party
    try:
        unit = parse_unique_identifier(entry.first_identifier)
    except IdentifierError:
        return None, None, None
    return unit.cooperative_approach_id, unit.vintage, unit.first_transferring_party
