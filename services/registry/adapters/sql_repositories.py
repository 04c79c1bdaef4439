"""SQLAlchemy Core repositories: rows in, domain values out, on one connection.

Every repository runs inside the unit of work's transaction and never commits.
Driver errors that mean a rule was broken become domain errors here, at the edge.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Connection,
    RowMapping,
    bindparam,
    delete,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from registry.adapters import tables as t
from registry.application.ports import ClassQuantity, IdempotencyKeyExists, IdempotencyRecord
from registry.domain.accounts import Account, AccountKind, AccountStatus
from registry.domain.adjustments import AdjustmentCause, CorrespondingAdjustment
from registry.domain.approaches import CooperativeApproach
from registry.domain.audit import AuditAction, AuditEntry
from registry.domain.authorisations import Authorisation, FirstTransferDefinition, Purpose
from registry.domain.blocks import (
    PRESENT_STATUSES,
    BlockAttributes,
    BlockStatus,
    SerialBlock,
    TransferRole,
)
from registry.domain.errors import DomainError, ReasonCode
from registry.domain.ndc import CaMethod, NdcConfiguration, NdcLevel, NdcRecord, NdcType
from registry.domain.registry_node import RegistryNode
from registry.domain.transfers import Reservation, ReservationState, TransferDirection

# Rows fetched per round trip when walking an account's holdings in order.
HELD_BLOCKS_PAGE_SIZE = 256
# Rows per executemany batch, to bound statement size and memory.
WRITE_BATCH_SIZE = 5_000

_SINGLETON = 1
_PRESENT = sorted(status.value for status in PRESENT_STATUSES)
_IN_ACCOUNT = sorted(
    status.value for status in (BlockStatus.HELD, BlockStatus.RESERVED, BlockStatus.INCOMING)
)


class _SqlRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def _lockable(self, statement: Any) -> Any:
        # SQLite has no row locks; its write transaction (BEGIN IMMEDIATE) already
        # serialises writers, so FOR UPDATE is only emitted where it means something.
        if self._connection.dialect.name == "sqlite":
            return statement
        return statement.with_for_update()


class SqlRegistryNodeRepository(_SqlRepository):
    def get(self) -> RegistryNode | None:
        return self._load(select(t.registry_node))

    def lock(self) -> RegistryNode | None:
        return self._load(self._lockable(select(t.registry_node)))

    def _load(self, statement: Any) -> RegistryNode | None:
        row = self._connection.execute(statement).mappings().first()
        if row is None:
            return None
        return RegistryNode(
            row["party"], row["registry_id"], row["transfers_frozen"], row["freeze_reason"]
        )

    def add(self, node: RegistryNode) -> None:
        self._connection.execute(
            insert(t.registry_node).values(singleton=_SINGLETON, next_serial=1, **_node_row(node))
        )

    def update(self, node: RegistryNode) -> None:
        self._connection.execute(update(t.registry_node).values(**_node_row(node)))

    def allocate_serials(self, quantity: int) -> int:
        # One UPDATE ... RETURNING takes the row lock and moves the counter atomically.
        first = self._connection.execute(
            update(t.registry_node)
            .values(next_serial=t.registry_node.c.next_serial + quantity)
            .returning(t.registry_node.c.next_serial)
        ).scalar_one()
        return int(first) - quantity


def _node_row(node: RegistryNode) -> dict[str, Any]:
    return {
        "party": node.party,
        "registry_id": node.registry_id,
        "transfers_frozen": node.transfers_frozen,
        "freeze_reason": node.freeze_reason,
    }


class SqlAccountRepository(_SqlRepository):
    def get(self, account_id: str) -> Account | None:
        return self._load(select(t.accounts).where(t.accounts.c.account_id == account_id))

    def lock(self, account_id: str) -> Account | None:
        return self._load(
            self._lockable(select(t.accounts).where(t.accounts.c.account_id == account_id))
        )

    def _load(self, statement: Any) -> Account | None:
        row = self._connection.execute(statement).mappings().first()
        return None if row is None else _account(row)

    def add(self, account: Account) -> None:
        self._connection.execute(insert(t.accounts).values(**_account_row(account)))

    def update(self, account: Account) -> None:
        self._connection.execute(
            update(t.accounts)
            .where(t.accounts.c.account_id == account.account_id)
            .values(**_account_row(account))
        )

    def list(self) -> list[Account]:
        rows = self._connection.execute(select(t.accounts).order_by(t.accounts.c.account_id))
        return [_account(row) for row in rows.mappings()]


def _account(row: RowMapping) -> Account:
    return Account(
        row["account_id"],
        AccountKind(row["kind"]),
        AccountStatus(row["status"]),
        row["holder_entity_id"],
        row["name"],
    )


def _account_row(account: Account) -> dict[str, Any]:
    return {
        "account_id": account.account_id,
        "kind": account.kind.value,
        "status": account.status.value,
        "holder_entity_id": account.holder_entity_id,
        "name": account.name,
    }


class SqlCooperativeApproachRepository(_SqlRepository):
    def get(self, cooperative_approach_id: str) -> CooperativeApproach | None:
        row = (
            self._connection.execute(
                select(t.cooperative_approaches).where(
                    t.cooperative_approaches.c.cooperative_approach_id == cooperative_approach_id
                )
            )
            .mappings()
            .first()
        )
        return None if row is None else _approach(row)

    def add(self, approach: CooperativeApproach) -> None:
        self._connection.execute(
            insert(t.cooperative_approaches).values(
                cooperative_approach_id=approach.cooperative_approach_id,
                name=approach.name,
                participating_parties=sorted(approach.participating_parties),
                vintage_from=approach.vintage_from,
                vintage_to=approach.vintage_to,
                in_force_from=approach.in_force_from,
                in_force_until=approach.in_force_until,
                sectors=sorted(approach.sectors),
                activity_types=sorted(approach.activity_types),
                metric=approach.metric,
                metric_higher_is_better=approach.metric_higher_is_better,
                omge_share=None if approach.omge_share is None else str(approach.omge_share),
                tco2e_per_unit=(
                    None if approach.tco2e_per_unit is None else str(approach.tco2e_per_unit)
                ),
            )
        )

    def list(self) -> list[CooperativeApproach]:
        rows = self._connection.execute(
            select(t.cooperative_approaches).order_by(
                t.cooperative_approaches.c.cooperative_approach_id
            )
        )
        return [_approach(row) for row in rows.mappings()]


def _approach(row: RowMapping) -> CooperativeApproach:
    return CooperativeApproach(
        cooperative_approach_id=row["cooperative_approach_id"],
        participating_parties=frozenset(row["participating_parties"]),
        vintage_from=row["vintage_from"],
        vintage_to=row["vintage_to"],
        in_force_from=row["in_force_from"],
        in_force_until=row["in_force_until"],
        sectors=frozenset(row["sectors"]),
        activity_types=frozenset(row["activity_types"]),
        metric=row["metric"],
        metric_higher_is_better=row["metric_higher_is_better"],
        omge_share=None if row["omge_share"] is None else Decimal(row["omge_share"]),
        name=row["name"],
        tco2e_per_unit=(None if row["tco2e_per_unit"] is None else Decimal(row["tco2e_per_unit"])),
    )


class SqlAuthorisationRepository(_SqlRepository):
    def current(self, authorising_party: str, authorisation_id: str) -> Authorisation | None:
        row = (
            self._connection.execute(
                self._of(authorising_party, authorisation_id)
                .order_by(t.authorisations.c.version.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
        return None if row is None else _authorisation(row)

    def get(
        self, authorising_party: str, authorisation_id: str, version: int
    ) -> Authorisation | None:
        row = (
            self._connection.execute(
                self._of(authorising_party, authorisation_id).where(
                    t.authorisations.c.version == version
                )
            )
            .mappings()
            .first()
        )
        return None if row is None else _authorisation(row)

    def _of(self, authorising_party: str, authorisation_id: str) -> Any:
        return select(t.authorisations).where(
            t.authorisations.c.authorising_party == authorising_party,
            t.authorisations.c.authorisation_id == authorisation_id,
        )

    def add(self, authorisation: Authorisation) -> None:
        try:
            with self._connection.begin_nested():
                self._connection.execute(
                    insert(t.authorisations).values(**_authorisation_row(authorisation))
                )
        except IntegrityError as error:
            raise DomainError(
                ReasonCode.AUTHORISATION_VERSION_CONFLICT,
                f"{authorisation.authorisation_id} v{authorisation.version} is recorded",
            ) from error

    def history(self, authorising_party: str, authorisation_id: str) -> list[Authorisation]:
        rows = self._connection.execute(
            self._of(authorising_party, authorisation_id).order_by(t.authorisations.c.version)
        )
        return [_authorisation(row) for row in rows.mappings()]

    def list_current(self, authorising_party: str) -> list[Authorisation]:
        columns = t.authorisations.c
        highest = (
            select(columns.authorisation_id, func.max(columns.version).label("version"))
            .where(columns.authorising_party == authorising_party)
            .group_by(columns.authorisation_id)
            .subquery()
        )
        rows = self._connection.execute(
            select(t.authorisations)
            .join(
                highest,
                (columns.authorisation_id == highest.c.authorisation_id)
                & (columns.version == highest.c.version),
            )
            .where(columns.authorising_party == authorising_party)
            .order_by(columns.authorisation_id)
        )
        return [_authorisation(row) for row in rows.mappings()]

    def list_versions(self, authorising_party: str) -> list[Authorisation]:
        columns = t.authorisations.c
        rows = self._connection.execute(
            select(t.authorisations)
            .where(columns.authorising_party == authorising_party)
            .order_by(columns.authorisation_id, columns.version)
        )
        return [_authorisation(row) for row in rows.mappings()]

    def counted_quantity(self, authorisation_id: str) -> int:
        value = self._connection.execute(
            select(t.authorisation_usage.c.counted_quantity).where(
                t.authorisation_usage.c.authorisation_id == authorisation_id
            )
        ).scalar_one_or_none()
        return int(value or 0)

    def add_counted_quantity(self, authorisation_id: str, delta: int) -> None:
        changed = self._connection.execute(
            update(t.authorisation_usage)
            .where(t.authorisation_usage.c.authorisation_id == authorisation_id)
            .values(counted_quantity=t.authorisation_usage.c.counted_quantity + delta)
        ).rowcount
        if changed == 0:
            self._connection.execute(
                insert(t.authorisation_usage).values(
                    authorisation_id=authorisation_id, counted_quantity=delta
                )
            )


def _authorisation(row: RowMapping) -> Authorisation:
    return Authorisation(
        authorisation_id=row["authorisation_id"],
        version=row["version"],
        authorising_party=row["authorising_party"],
        authorised_on=row["authorised_on"],
        cooperative_approach_id=row["cooperative_approach_id"],
        authorised_parties=frozenset(row["authorised_parties"]),
        purposes=frozenset(Purpose(purpose) for purpose in row["purposes"]),
        authorised_entities=frozenset(row["authorised_entities"]),
        quantity_cap=row["quantity_cap"],
        mitigation_from=row["mitigation_from"],
        mitigation_to=row["mitigation_to"],
        use_from=row["use_from"],
        use_to=row["use_to"],
        terms=row["terms"],
        oimp_first_transfer=(
            None
            if row["oimp_first_transfer"] is None
            else FirstTransferDefinition(row["oimp_first_transfer"])
        ),
        revoked=row["revoked"],
    )


def _authorisation_row(authorisation: Authorisation) -> dict[str, Any]:
    return {
        "authorising_party": authorisation.authorising_party,
        "authorisation_id": authorisation.authorisation_id,
        "version": authorisation.version,
        "authorised_on": authorisation.authorised_on,
        "cooperative_approach_id": authorisation.cooperative_approach_id,
        "authorised_parties": sorted(authorisation.authorised_parties),
        "purposes": sorted(purpose.value for purpose in authorisation.purposes),
        "authorised_entities": sorted(authorisation.authorised_entities),
        "quantity_cap": authorisation.quantity_cap,
        "mitigation_from": authorisation.mitigation_from,
        "mitigation_to": authorisation.mitigation_to,
        "use_from": authorisation.use_from,
        "use_to": authorisation.use_to,
        "terms": authorisation.terms,
        "oimp_first_transfer": (
            None
            if authorisation.oimp_first_transfer is None
            else authorisation.oimp_first_transfer.value
        ),
        "revoked": authorisation.revoked,
    }


_BLOCK = t.serial_blocks.c


def _block(row: RowMapping) -> SerialBlock:
    attributes = BlockAttributes(
        cooperative_approach_id=row["cooperative_approach_id"],
        originating_registry_id=row["originating_registry_id"],
        first_transferring_party=row["first_transferring_party"],
        vintage=row["vintage"],
        metric=row["metric"],
        gwp_values=row["gwp_values"],
        mitigation_type=row["mitigation_type"],
        sector=row["sector"],
        activity_type=row["activity_type"],
        first_transfer_done=row["first_transfer_done"],
        authorisation_id=row["authorisation_id"],
        authorisation_version=row["authorisation_version"],
    )
    # Constructing the domain value re-checks the range invariant after load.
    return SerialBlock(
        account_id=row["account_id"],
        status=BlockStatus(row["status"]),
        first_serial=row["first_serial"],
        last_serial=row["last_serial"],
        attributes=attributes,
        block_id=row["block_id"],
        transfer_id=row["transfer_id"],
        transfer_role=None if row["transfer_role"] is None else TransferRole(row["transfer_role"]),
    )


def _block_row(block: SerialBlock) -> dict[str, Any]:
    attributes = block.attributes
    return {
        "account_id": block.account_id,
        "status": block.status.value,
        "first_serial": block.first_serial,
        "last_serial": block.last_serial,
        "cooperative_approach_id": attributes.cooperative_approach_id,
        "originating_registry_id": attributes.originating_registry_id,
        "first_transferring_party": attributes.first_transferring_party,
        "vintage": attributes.vintage,
        "metric": attributes.metric,
        "gwp_values": attributes.gwp_values,
        "mitigation_type": attributes.mitigation_type,
        "sector": attributes.sector,
        "activity_type": attributes.activity_type,
        "first_transfer_done": attributes.first_transfer_done,
        "authorisation_id": attributes.authorisation_id,
        "authorisation_version": attributes.authorisation_version,
        "transfer_id": block.transfer_id,
        "transfer_role": None if block.transfer_role is None else block.transfer_role.value,
    }


def _batches(rows: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), WRITE_BATCH_SIZE):
        yield rows[start : start + WRITE_BATCH_SIZE]


class SqlBlockRepository(_SqlRepository):
    def add_many(self, blocks: Sequence[SerialBlock]) -> None:
        if any(block.block_id is not None for block in blocks):
            raise ValueError("a new block has no id yet")
        try:
            with self._connection.begin_nested():
                for batch in _batches([_block_row(block) for block in blocks]):
                    self._connection.execute(insert(t.serial_blocks), list(batch))
        except IntegrityError as error:
            raise DomainError(
                ReasonCode.SERIAL_OVERLAP, "a serial of these blocks is already present"
            ) from error

    def update_many(self, blocks: Sequence[SerialBlock]) -> None:
        rows = []
        for block in blocks:
            if block.block_id is None:
                raise ValueError("only a stored block can be updated")
            rows.append({"target_block_id": block.block_id, **_block_row(block)})
        statement = (
            update(t.serial_blocks)
            .where(_BLOCK.block_id == bindparam("target_block_id"))
            .values({name: bindparam(name) for name in _block_row(blocks[0])} if blocks else {})
        )
        for batch in _batches(rows):
            self._connection.execute(statement, list(batch))

    def delete_many(self, blocks: Sequence[SerialBlock]) -> None:
        ids = [block.block_id for block in blocks if block.block_id is not None]
        for batch in _batches(ids):
            self._connection.execute(delete(t.serial_blocks).where(_BLOCK.block_id.in_(batch)))

    def iter_held(
        self,
        account_id: str,
        *,
        cooperative_approach_id: str | None = None,
        vintage: int | None = None,
    ) -> Iterator[SerialBlock]:
        # Keyset paging: a command that needs a few blocks reads a few rows, however
        # large the account.
        base = select(t.serial_blocks).where(
            _BLOCK.account_id == account_id, _BLOCK.status == BlockStatus.HELD.value
        )
        if cooperative_approach_id is not None:
            base = base.where(_BLOCK.cooperative_approach_id == cooperative_approach_id)
        if vintage is not None:
            base = base.where(_BLOCK.vintage == vintage)
        order = (_BLOCK.originating_registry_id, _BLOCK.first_serial)
        after: tuple[str, int] | None = None
        while True:
            page_query = base.order_by(*order).limit(HELD_BLOCKS_PAGE_SIZE)
            if after is not None:
                page_query = page_query.where(tuple_(*order) > tuple_(*after))
            page = [_block(row) for row in self._connection.execute(page_query).mappings()]
            yield from page
            if len(page) < HELD_BLOCKS_PAGE_SIZE:
                return
            after = page[-1].key

    def _overlapping(
        self,
        originating_registry_id: str,
        first_serial: int,
        last_serial: int,
        statuses: list[str],
        account_id: str | None = None,
    ) -> list[SerialBlock]:
        """Present blocks never overlap each other, so the overlapping ones are those
        starting inside the range plus at most one starting before it."""
        base = select(t.serial_blocks).where(
            _BLOCK.originating_registry_id == originating_registry_id,
            _BLOCK.status.in_(statuses),
        )
        if account_id is not None:
            base = base.where(_BLOCK.account_id == account_id)
        inside = base.where(_BLOCK.first_serial.between(first_serial, last_serial))
        before = (
            base.where(_BLOCK.first_serial < first_serial)
            .order_by(_BLOCK.first_serial.desc())
            .limit(1)
        )
        blocks = [_block(row) for row in self._connection.execute(inside).mappings()]
        blocks += [
            block
            for block in (_block(row) for row in self._connection.execute(before).mappings())
            if block.last_serial >= first_serial
        ]
        return sorted(blocks, key=lambda block: block.first_serial)

    def in_account_overlapping(
        self, account_id: str, originating_registry_id: str, first_serial: int, last_serial: int
    ) -> list[SerialBlock]:
        # The predecessor must be searched among all present blocks: the one just
        # below the range may belong to another account and hide nothing.
        present = self._overlapping(originating_registry_id, first_serial, last_serial, _PRESENT)
        return [
            block
            for block in present
            if block.account_id == account_id and block.status.value in _IN_ACCOUNT
        ]

    def present_overlapping(
        self, originating_registry_id: str, first_serial: int, last_serial: int
    ) -> list[SerialBlock]:
        return self._overlapping(originating_registry_id, first_serial, last_serial, _PRESENT)

    def transferred_out_overlapping(
        self, originating_registry_id: str, first_serial: int, last_serial: int
    ) -> list[SerialBlock]:
        # Not _overlapping: blocks of units that left twice overlap each other.
        rows = self._connection.execute(
            select(t.serial_blocks)
            .where(
                _BLOCK.originating_registry_id == originating_registry_id,
                _BLOCK.status == BlockStatus.TRANSFERRED_OUT.value,
                _BLOCK.first_serial <= last_serial,
                _BLOCK.last_serial >= first_serial,
            )
            .order_by(_BLOCK.first_serial, _BLOCK.block_id)
        )
        return [_block(row) for row in rows.mappings()]

    def for_transfer(self, transfer_id: str) -> list[SerialBlock]:
        rows = self._connection.execute(
            select(t.serial_blocks)
            .where(_BLOCK.transfer_id == transfer_id)
            .order_by(_BLOCK.originating_registry_id, _BLOCK.first_serial)
        )
        return [_block(row) for row in rows.mappings()]

    def quantity_by_status(self) -> dict[BlockStatus, int]:
        quantity = func.sum(_BLOCK.last_serial - _BLOCK.first_serial + 1)
        rows = self._connection.execute(select(_BLOCK.status, quantity).group_by(_BLOCK.status))
        return {BlockStatus(status): int(total) for status, total in rows}

    def quantity_in_account(self, account_id: str, status: BlockStatus) -> int:
        total = self._connection.execute(
            select(func.sum(_BLOCK.last_serial - _BLOCK.first_serial + 1)).where(
                _BLOCK.account_id == account_id, _BLOCK.status == status.value
            )
        ).scalar_one()
        return int(total or 0)

    def list_account(self, account_id: str) -> list[SerialBlock]:
        rows = self._connection.execute(
            select(t.serial_blocks)
            .where(_BLOCK.account_id == account_id)
            .order_by(_BLOCK.originating_registry_id, _BLOCK.first_serial, _BLOCK.block_id)
        )
        return [_block(row) for row in rows.mappings()]

    def quantities_by_class(self) -> list[ClassQuantity]:
        quantity = func.sum(_BLOCK.last_serial - _BLOCK.first_serial + 1)
        keys = (
            t.accounts.c.kind,
            _BLOCK.cooperative_approach_id,
            _BLOCK.vintage,
            _BLOCK.metric,
            _BLOCK.status,
        )
        rows = self._connection.execute(
            select(*keys, quantity)
            .select_from(t.serial_blocks.join(t.accounts))
            .group_by(*keys)
            .order_by(*keys)
        )
        return [
            ClassQuantity(
                account_kind=AccountKind(kind),
                cooperative_approach_id=approach,
                vintage=vintage,
                metric=metric,
                status=BlockStatus(status),
                quantity=int(total),
            )
            for kind, approach, vintage, metric, status, total in rows
        ]


class SqlAdjustmentRepository(_SqlRepository):
    def add_many(self, entries: Sequence[CorrespondingAdjustment]) -> None:
        rows = [
            {
                "party": entry.party,
                "year": entry.year,
                "metric": entry.metric,
                "quantity": entry.quantity,
                "cause": entry.cause.value,
                "first_identifier": entry.first_identifier,
                "last_identifier": entry.last_identifier,
                "transfer_id": entry.transfer_id,
                "recorded_at": entry.recorded_at,
            }
            for entry in entries
        ]
        for batch in _batches(rows):
            self._connection.execute(insert(t.corresponding_adjustments), list(batch))

    def balance(self, party: str, year: int, metric: str) -> int:
        columns = t.corresponding_adjustments.c
        total = self._connection.execute(
            select(func.sum(columns.quantity)).where(
                columns.party == party, columns.year == year, columns.metric == metric
            )
        ).scalar_one()
        return int(total or 0)

    def for_party(self, party: str) -> list[CorrespondingAdjustment]:
        columns = t.corresponding_adjustments.c
        rows = self._connection.execute(
            select(t.corresponding_adjustments)
            .where(columns.party == party)
            .order_by(columns.entry_id)
        )
        return [
            CorrespondingAdjustment(
                party=row["party"],
                year=row["year"],
                metric=row["metric"],
                quantity=row["quantity"],
                cause=AdjustmentCause(row["cause"]),
                first_identifier=row["first_identifier"],
                last_identifier=row["last_identifier"],
                recorded_at=row["recorded_at"],
                transfer_id=row["transfer_id"],
            )
            for row in rows.mappings()
        ]


_AUDIT_FIELDS = (
    "occurred_at",
    "originating_registry_id",
    "first_serial",
    "last_serial",
    "first_identifier",
    "last_identifier",
    "quantity",
    "from_account_id",
    "to_account_id",
    "transfer_id",
    "counterparty_party",
    "cooperative_approach_id",
    "vintage",
    "metric",
    "first_transferring_party",
    "authorisation_id",
    "year_of_use",
    "sector",
    "activity_type",
    "mitigation_type",
    "gwp_values",
    "authorisation_version",
    "first_transfer",
)


class SqlNdcRepository(_SqlRepository):
    def current(self, party: str) -> NdcRecord | None:
        columns = t.ndc_configurations.c
        row = (
            self._connection.execute(
                select(t.ndc_configurations)
                .where(columns.party == party)
                .order_by(columns.version.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
        return None if row is None else _ndc_record(row)

    def add(self, record: NdcRecord) -> None:
        config = record.configuration
        self._connection.execute(
            insert(t.ndc_configurations).values(
                party=record.party,
                version=record.version,
                recorded_at=record.recorded_at,
                ndc_type=config.ndc_type.value,
                period_start=config.period_start,
                period_end=config.period_end,
                target_year=config.target_year,
                method=None if config.method is None else config.method.value,
                metrics=list(config.metrics),
                trajectory=_levels_json(config.trajectory),
                reported_emissions=_levels_json(config.reported_emissions),
            )
        )


def _levels_json(levels: Sequence[NdcLevel]) -> list[list[Any]]:
    # Decimals as strings: JSON numbers would pass through binary floats.
    return [[level.year, level.metric, str(level.level)] for level in levels]


def _levels(rows: Sequence[Sequence[Any]]) -> tuple[NdcLevel, ...]:
    return tuple(NdcLevel(int(year), str(metric), Decimal(level)) for year, metric, level in rows)


def _ndc_record(row: Any) -> NdcRecord:
    return NdcRecord(
        party=row["party"],
        version=row["version"],
        recorded_at=row["recorded_at"],
        configuration=NdcConfiguration(
            ndc_type=NdcType(row["ndc_type"]),
            period_start=row["period_start"],
            period_end=row["period_end"],
            metrics=tuple(row["metrics"]),
            method=None if row["method"] is None else CaMethod(row["method"]),
            target_year=row["target_year"],
            trajectory=_levels(row["trajectory"]),
            reported_emissions=_levels(row["reported_emissions"]),
        ),
    )


class SqlAuditRepository(_SqlRepository):
    """Append-only: inserts and reads, no update or delete statement exists here."""

    def append_many(self, entries: Sequence[AuditEntry]) -> None:
        rows = [
            {
                "action": entry.action.value,
                "purpose": None if entry.purpose is None else entry.purpose.value,
                **{name: getattr(entry, name) for name in _AUDIT_FIELDS},
            }
            for entry in entries
        ]
        for batch in _batches(rows):
            self._connection.execute(insert(t.audit_entries), list(batch))

    def for_block(
        self, originating_registry_id: str, first_serial: int, last_serial: int
    ) -> list[AuditEntry]:
        columns = t.audit_entries.c
        rows = self._connection.execute(
            select(t.audit_entries)
            .where(
                columns.originating_registry_id == originating_registry_id,
                columns.first_serial <= last_serial,
                columns.last_serial >= first_serial,
            )
            .order_by(columns.entry_id)
        )
        return [_audit_entry(row) for row in rows.mappings()]

    def between(
        self, occurred_from: datetime | None, occurred_before: datetime
    ) -> list[AuditEntry]:
        columns = t.audit_entries.c
        statement = select(t.audit_entries).where(columns.occurred_at < occurred_before)
        if occurred_from is not None:
            statement = statement.where(columns.occurred_at >= occurred_from)
        rows = self._connection.execute(statement.order_by(columns.entry_id))
        return [_audit_entry(row) for row in rows.mappings()]

    def with_actions(self, actions: Collection[AuditAction]) -> list[AuditEntry]:
        columns = t.audit_entries.c
        rows = self._connection.execute(
            select(t.audit_entries)
            .where(columns.action.in_([action.value for action in actions]))
            .order_by(columns.entry_id)
        )
        return [_audit_entry(row) for row in rows.mappings()]

    def total_quantity(self, action: AuditAction) -> int:
        columns = t.audit_entries.c
        total = self._connection.execute(
            select(func.sum(columns.quantity)).where(columns.action == action.value)
        ).scalar_one()
        return int(total or 0)


def _audit_entry(row: RowMapping) -> AuditEntry:
    return AuditEntry(
        action=AuditAction(row["action"]),
        purpose=None if row["purpose"] is None else Purpose(row["purpose"]),
        **{name: row[name] for name in _AUDIT_FIELDS},
    )


class SqlReservationRepository(_SqlRepository):
    def get(self, transfer_id: str) -> Reservation | None:
        return self._load(select(t.reservations).where(t.reservations.c.transfer_id == transfer_id))

    def lock(self, transfer_id: str, coordinator_party: str) -> Reservation | None:
        columns = t.reservations.c
        return self._load(
            self._lockable(
                select(t.reservations).where(
                    columns.transfer_id == transfer_id,
                    columns.coordinator_party == coordinator_party,
                )
            )
        )

    def _load(self, statement: Any) -> Reservation | None:
        row = self._connection.execute(statement).mappings().first()
        return None if row is None else _reservation(row)

    def add(self, reservation: Reservation) -> None:
        try:
            with self._connection.begin_nested():
                self._connection.execute(
                    insert(t.reservations).values(**_reservation_row(reservation))
                )
        except IntegrityError as error:
            raise DomainError(
                ReasonCode.TRANSFER_ID_REUSED, f"transfer id {reservation.transfer_id} is taken"
            ) from error

    def update(self, reservation: Reservation) -> None:
        self._connection.execute(
            update(t.reservations)
            .where(
                t.reservations.c.transfer_id == reservation.transfer_id,
                t.reservations.c.coordinator_party == reservation.coordinator_party,
            )
            .values(**_reservation_row(reservation))
        )

    def list(
        self,
        *,
        state: ReservationState | None = None,
        direction: TransferDirection | None = None,
    ) -> list[Reservation]:
        columns = t.reservations.c
        statement = select(t.reservations).order_by(columns.created_at, columns.transfer_id)
        if state is not None:
            statement = statement.where(columns.state == state.value)
        if direction is not None:
            statement = statement.where(columns.direction == direction.value)
        return [_reservation(row) for row in self._connection.execute(statement).mappings()]


def _reservation(row: RowMapping) -> Reservation:
    return Reservation(
        transfer_id=row["transfer_id"],
        direction=TransferDirection(row["direction"]),
        account_id=row["account_id"],
        counterparty_party=row["counterparty_party"],
        coordinator_party=row["coordinator_party"],
        purpose=Purpose(row["purpose"]),
        quantity=row["quantity"],
        omge_quantity=row["omge_quantity"],
        first_transfer_quantity=row["first_transfer_quantity"],
        state=ReservationState(row["state"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        acquiring_entity=row["acquiring_entity"],
    )


def _reservation_row(reservation: Reservation) -> dict[str, Any]:
    return {
        "transfer_id": reservation.transfer_id,
        "direction": reservation.direction.value,
        "account_id": reservation.account_id,
        "counterparty_party": reservation.counterparty_party,
        "coordinator_party": reservation.coordinator_party,
        "purpose": reservation.purpose.value,
        "quantity": reservation.quantity,
        "omge_quantity": reservation.omge_quantity,
        "first_transfer_quantity": reservation.first_transfer_quantity,
        "state": reservation.state.value,
        "created_at": reservation.created_at,
        "updated_at": reservation.updated_at,
        "acquiring_entity": reservation.acquiring_entity,
    }


class SqlIdempotencyRepository(_SqlRepository):
    def get(self, idempotency_key: str, principal: str) -> IdempotencyRecord | None:
        columns = t.idempotency_keys.c
        row = (
            self._connection.execute(
                select(t.idempotency_keys).where(
                    columns.idempotency_key == idempotency_key, columns.principal == principal
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        return IdempotencyRecord(**{name: row[name] for name in row.keys()})  # noqa: SIM118

    def put(self, record: IdempotencyRecord) -> None:
        values = {
            "idempotency_key": record.idempotency_key,
            "principal": record.principal,
            "method": record.method,
            "path": record.path,
            "request_fingerprint": record.request_fingerprint,
            "response_status": record.response_status,
            "response_body": record.response_body,
            "created_at": record.created_at,
        }
        # ON CONFLICT DO NOTHING keeps the transaction usable on PostgreSQL, where
        # a failed INSERT would abort it; the row count tells us who won.
        dialect = self._connection.dialect.name
        statement: Any
        if dialect == "postgresql":
            statement = postgresql.insert(t.idempotency_keys).values(**values)
        elif dialect == "sqlite":
            statement = sqlite.insert(t.idempotency_keys).values(**values)
        else:
            raise NotImplementedError(f"no idempotency upsert for {dialect}")
        inserted = self._connection.execute(
            statement.on_conflict_do_nothing().returning(t.idempotency_keys.c.idempotency_key)
        ).first()
        if inserted is None:
            raise IdempotencyKeyExists(f"idempotency key {record.idempotency_key!r} is taken")
