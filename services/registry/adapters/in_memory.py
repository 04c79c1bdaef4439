"""An in-memory unit of work with the same behaviour as the SQLAlchemy one.

It backs the fast unit tests and the simulator. The same contract tests run
against it and the real adapter, so the two cannot drift apart. A unit of work
works on a copy of the store and publishes it only on commit.
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import TracebackType
from typing import Self

from registry.application.ports import (
    ClassQuantity,
    IdempotencyKeyExists,
    IdempotencyRecord,
)
from registry.domain.accounts import Account, AccountKind
from registry.domain.adjustments import CorrespondingAdjustment
from registry.domain.approaches import CooperativeApproach
from registry.domain.audit import AuditAction, AuditEntry
from registry.domain.authorisations import Authorisation
from registry.domain.blocks import PRESENT_STATUSES, BlockStatus, SerialBlock
from registry.domain.custody import RangeKey, Segment, UnitAnnouncement
from registry.domain.errors import DomainError, ReasonCode
from registry.domain.ndc import NdcRecord
from registry.domain.registry_node import RegistryNode
from registry.domain.transfers import Reservation, ReservationState, TransferDirection

_IN_ACCOUNT_STATUSES = frozenset({BlockStatus.HELD, BlockStatus.RESERVED, BlockStatus.INCOMING})


@dataclass
class InMemoryStore:
    """Everything one registry node stores; share one store between units of work."""

    node: RegistryNode | None = None
    next_serial: int = 1
    accounts: dict[str, Account] = field(default_factory=dict)
    approaches: dict[str, CooperativeApproach] = field(default_factory=dict)
    authorisations: dict[tuple[str, str, int], Authorisation] = field(default_factory=dict)
    counted: dict[str, int] = field(default_factory=dict)
    blocks: dict[int, SerialBlock] = field(default_factory=dict)
    next_block_id: int = 1
    adjustments: list[CorrespondingAdjustment] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    reservations: dict[str, Reservation] = field(default_factory=dict)
    idempotency: dict[tuple[str, str], IdempotencyRecord] = field(default_factory=dict)
    # What the ledger announced on the federation unit log, in order.
    unit_announcements: list[UnitAnnouncement] = field(default_factory=list)
    ndc_records: list[NdcRecord] = field(default_factory=list)


class _Repository:
    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        self._uow = uow

    @property
    def _store(self) -> InMemoryStore:
        return self._uow.working


class InMemoryRegistryNodeRepository(_Repository):
    def get(self) -> RegistryNode | None:
        return self._store.node

    def lock(self) -> RegistryNode | None:
        return self._store.node

    def add(self, node: RegistryNode) -> None:
        self._store.node = node

    def update(self, node: RegistryNode) -> None:
        self._store.node = node

    def allocate_serials(self, quantity: int) -> int:
        first = self._store.next_serial
        self._store.next_serial += quantity
        return first


class InMemoryAccountRepository(_Repository):
    def get(self, account_id: str) -> Account | None:
        return self._store.accounts.get(account_id)

    def lock(self, account_id: str) -> Account | None:
        return self.get(account_id)

    def add(self, account: Account) -> None:
        self._store.accounts[account.account_id] = account

    def update(self, account: Account) -> None:
        self._store.accounts[account.account_id] = account

    def list(self) -> list[Account]:
        return sorted(self._store.accounts.values(), key=lambda account: account.account_id)


class InMemoryCooperativeApproachRepository(_Repository):
    def get(self, cooperative_approach_id: str) -> CooperativeApproach | None:
        return self._store.approaches.get(cooperative_approach_id)

    def add(self, approach: CooperativeApproach) -> None:
        self._store.approaches[approach.cooperative_approach_id] = approach

    def list(self) -> list[CooperativeApproach]:
        return sorted(self._store.approaches.values(), key=lambda a: a.cooperative_approach_id)


class InMemoryAuthorisationRepository(_Repository):
    def current(self, authorising_party: str, authorisation_id: str) -> Authorisation | None:
        versions = self.history(authorising_party, authorisation_id)
        return versions[-1] if versions else None

    def get(
        self, authorising_party: str, authorisation_id: str, version: int
    ) -> Authorisation | None:
        return self._store.authorisations.get((authorising_party, authorisation_id, version))

    def add(self, authorisation: Authorisation) -> None:
        key = (
            authorisation.authorising_party,
            authorisation.authorisation_id,
            authorisation.version,
        )
        if key in self._store.authorisations:
            raise DomainError(ReasonCode.AUTHORISATION_VERSION_CONFLICT, f"{key} is recorded")
        self._store.authorisations[key] = authorisation

    def history(self, authorising_party: str, authorisation_id: str) -> list[Authorisation]:
        return sorted(
            (
                authorisation
                for (party, identifier, _), authorisation in self._store.authorisations.items()
                if party == authorising_party and identifier == authorisation_id
            ),
            key=lambda authorisation: authorisation.version,
        )

    def list_current(self, authorising_party: str) -> list[Authorisation]:
        current: dict[str, Authorisation] = {}
        for authorisation in self.list_versions(authorising_party):
            current[authorisation.authorisation_id] = authorisation
        return list(current.values())

    def list_versions(self, authorising_party: str) -> list[Authorisation]:
        return sorted(
            (
                authorisation
                for (party, _, _), authorisation in self._store.authorisations.items()
                if party == authorising_party
            ),
            key=lambda authorisation: (authorisation.authorisation_id, authorisation.version),
        )

    def counted_quantity(self, authorisation_id: str) -> int:
        return self._store.counted.get(authorisation_id, 0)

    def add_counted_quantity(self, authorisation_id: str, delta: int) -> None:
        self._store.counted[authorisation_id] = self.counted_quantity(authorisation_id) + delta


def _order(block: SerialBlock) -> tuple[str, int]:
    return block.key


class InMemoryBlockRepository(_Repository):
    def add_many(self, blocks: Sequence[SerialBlock]) -> None:
        for block in blocks:
            if block.block_id is not None:
                raise ValueError("a new block has no id yet")
            self._check_unique(block)
            block_id = self._store.next_block_id
            self._store.next_block_id += 1
            self._store.blocks[block_id] = replace(block, block_id=block_id)

    def _check_unique(self, block: SerialBlock) -> None:
        # Mirrors the partial unique index of the SQL schema.
        if block.status is BlockStatus.TRANSFERRED_OUT:
            return
        for other in self._store.blocks.values():
            if other.status is not BlockStatus.TRANSFERRED_OUT and other.key == block.key:
                raise DomainError(ReasonCode.SERIAL_OVERLAP, f"{block.key} is already present")

    def update_many(self, blocks: Sequence[SerialBlock]) -> None:
        for block in blocks:
            if block.block_id not in self._store.blocks:
                raise KeyError(f"no stored block {block.block_id}")
            self._store.blocks[block.block_id] = block

    def delete_many(self, blocks: Sequence[SerialBlock]) -> None:
        for block in blocks:
            if block.block_id is not None:
                self._store.blocks.pop(block.block_id, None)

    def iter_held(
        self,
        account_id: str,
        *,
        cooperative_approach_id: str | None = None,
        vintage: int | None = None,
    ) -> Iterator[SerialBlock]:
        candidates = [
            block
            for block in self._store.blocks.values()
            if block.account_id == account_id
            and block.status is BlockStatus.HELD
            and cooperative_approach_id in (None, block.attributes.cooperative_approach_id)
            and vintage in (None, block.attributes.vintage)
        ]
        return iter(sorted(candidates, key=_order))

    def in_account_overlapping(
        self, account_id: str, originating_registry_id: str, first_serial: int, last_serial: int
    ) -> list[SerialBlock]:
        return [
            block
            for block in self.present_overlapping(
                originating_registry_id, first_serial, last_serial
            )
            if block.account_id == account_id and block.status in _IN_ACCOUNT_STATUSES
        ]

    def present_overlapping(
        self, originating_registry_id: str, first_serial: int, last_serial: int
    ) -> list[SerialBlock]:
        return sorted(
            (
                block
                for block in self._store.blocks.values()
                if block.status in PRESENT_STATUSES
                and block.attributes.originating_registry_id == originating_registry_id
                and block.overlaps(first_serial, last_serial)
            ),
            key=_order,
        )

    def transferred_out_overlapping(
        self, originating_registry_id: str, first_serial: int, last_serial: int
    ) -> list[SerialBlock]:
        return sorted(
            (
                block
                for block in self._store.blocks.values()
                if block.status is BlockStatus.TRANSFERRED_OUT
                and block.attributes.originating_registry_id == originating_registry_id
                and block.overlaps(first_serial, last_serial)
            ),
            key=lambda block: (block.first_serial, block.block_id or 0),
        )

    def for_transfer(self, transfer_id: str) -> list[SerialBlock]:
        return sorted(
            (block for block in self._store.blocks.values() if block.transfer_id == transfer_id),
            key=_order,
        )

    def quantity_by_status(self) -> dict[BlockStatus, int]:
        totals: dict[BlockStatus, int] = {}
        for block in self._store.blocks.values():
            totals[block.status] = totals.get(block.status, 0) + block.quantity
        return totals

    def quantity_in_account(self, account_id: str, status: BlockStatus) -> int:
        return sum(
            block.quantity
            for block in self._store.blocks.values()
            if block.account_id == account_id and block.status is status
        )

    def list_account(self, account_id: str) -> list[SerialBlock]:
        return sorted(
            (block for block in self._store.blocks.values() if block.account_id == account_id),
            key=_order,
        )

    def quantities_by_class(self) -> list[ClassQuantity]:
        totals: dict[tuple[AccountKind, str, int, str, BlockStatus], int] = {}
        for block in self._store.blocks.values():
            attributes = block.attributes
            key = (
                self._store.accounts[block.account_id].kind,
                attributes.cooperative_approach_id,
                attributes.vintage,
                attributes.metric,
                block.status,
            )
            totals[key] = totals.get(key, 0) + block.quantity
        return [ClassQuantity(*key, quantity) for key, quantity in sorted(totals.items())]


class InMemoryAdjustmentRepository(_Repository):
    def add_many(self, entries: Sequence[CorrespondingAdjustment]) -> None:
        self._store.adjustments.extend(entries)

    def balance(self, party: str, year: int, metric: str) -> int:
        return sum(
            entry.quantity
            for entry in self._store.adjustments
            if (entry.party, entry.year, entry.metric) == (party, year, metric)
        )

    def for_party(self, party: str) -> list[CorrespondingAdjustment]:
        return [entry for entry in self._store.adjustments if entry.party == party]


class InMemoryAuditRepository(_Repository):
    def append_many(self, entries: Sequence[AuditEntry]) -> None:
        self._store.audit.extend(entries)

    def for_block(
        self, originating_registry_id: str, first_serial: int, last_serial: int
    ) -> list[AuditEntry]:
        return [
            entry
            for entry in self._store.audit
            if entry.originating_registry_id == originating_registry_id
            and entry.first_serial <= last_serial
            and first_serial <= entry.last_serial
        ]

    def total_quantity(self, action: AuditAction) -> int:
        return sum(entry.quantity for entry in self._store.audit if entry.action is action)

    def with_actions(self, actions: Collection[AuditAction]) -> list[AuditEntry]:
        return [entry for entry in self._store.audit if entry.action in actions]

    def between(
        self, occurred_from: datetime | None, occurred_before: datetime
    ) -> list[AuditEntry]:
        return [
            entry
            for entry in self._store.audit
            if (occurred_from is None or occurred_from <= entry.occurred_at)
            and entry.occurred_at < occurred_before
        ]


class InMemoryReservationRepository(_Repository):
    def get(self, transfer_id: str) -> Reservation | None:
        return self._store.reservations.get(transfer_id)

    def lock(self, transfer_id: str, coordinator_party: str) -> Reservation | None:
        reservation = self.get(transfer_id)
        if reservation is None or reservation.coordinator_party != coordinator_party:
            return None
        return reservation

    def add(self, reservation: Reservation) -> None:
        if reservation.transfer_id in self._store.reservations:
            raise DomainError(ReasonCode.TRANSFER_ID_REUSED, f"{reservation.transfer_id} exists")
        self._store.reservations[reservation.transfer_id] = reservation

    def update(self, reservation: Reservation) -> None:
        stored = self._store.reservations.get(reservation.transfer_id)
        if stored is None or stored.coordinator_party != reservation.coordinator_party:
            raise DomainError(ReasonCode.UNKNOWN_TRANSFER, f"{reservation.transfer_id} is not kept")
        self._store.reservations[reservation.transfer_id] = reservation

    def list(
        self,
        *,
        state: ReservationState | None = None,
        direction: TransferDirection | None = None,
    ) -> list[Reservation]:
        return sorted(
            (
                reservation
                for reservation in self._store.reservations.values()
                if state in (None, reservation.state) and direction in (None, reservation.direction)
            ),
            key=lambda reservation: (reservation.created_at, reservation.transfer_id),
        )


class InMemoryIdempotencyRepository(_Repository):
    def get(self, idempotency_key: str, principal: str) -> IdempotencyRecord | None:
        return self._store.idempotency.get((idempotency_key, principal))

    def put(self, record: IdempotencyRecord) -> None:
        key = (record.idempotency_key, record.principal)
        if key in self._store.idempotency:
            raise IdempotencyKeyExists(f"idempotency key {record.idempotency_key!r} is taken")
        # Stored as JSON would be: a copy, so later mutation of the caller's body is not seen.
        self._store.idempotency[key] = replace(
            record, response_body=copy.deepcopy(record.response_body)
        )


class InMemoryNdcRepository(_Repository):
    def current(self, party: str) -> NdcRecord | None:
        versions = [record for record in self._store.ndc_records if record.party == party]
        return max(versions, key=lambda record: record.version, default=None)

    def add(self, record: NdcRecord) -> None:
        if any(
            (known.party, known.version) == (record.party, record.version)
            for known in self._store.ndc_records
        ):
            raise RuntimeError(f"NDC configuration v{record.version} is already recorded")
        self._store.ndc_records.append(record)


class InMemoryUnitOfWork:
    """A unit of work over an :class:`InMemoryStore`; reusable, one transaction at a time."""

    def __init__(self, store: InMemoryStore | None = None) -> None:
        self.store = store if store is not None else InMemoryStore()
        self.working = self.store
        self.committed = False
        self.registry_node = InMemoryRegistryNodeRepository(self)
        self.accounts = InMemoryAccountRepository(self)
        self.approaches = InMemoryCooperativeApproachRepository(self)
        self.authorisations = InMemoryAuthorisationRepository(self)
        self.blocks = InMemoryBlockRepository(self)
        self.adjustments = InMemoryAdjustmentRepository(self)
        self.audit = InMemoryAuditRepository(self)
        self.reservations = InMemoryReservationRepository(self)
        self.idempotency = InMemoryIdempotencyRepository(self)
        self.unit_log = InMemoryUnitLog(self)
        self.ndc = InMemoryNdcRepository(self)

    def __enter__(self) -> Self:
        # Domain values are frozen, so copying the containers isolates the transaction.
        self.working = _copy_store(self.store)
        self.committed = False
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.working = self.store

    def commit(self) -> None:
        self.store.__dict__.update(_copy_store(self.working).__dict__)
        self.working = self.store
        self.committed = True

    def rollback(self) -> None:
        self.working = _copy_store(self.store)


class InMemoryUnitLog(_Repository):
    def announce(self, announcements: Sequence[UnitAnnouncement]) -> None:
        self._store.unit_announcements.extend(announcements)

    @property
    def can_announce(self) -> bool:
        return True

    def announced(self) -> list[UnitAnnouncement]:
        return list(self._store.unit_announcements)


def _copy_store(store: InMemoryStore) -> InMemoryStore:
    return InMemoryStore(
        node=store.node,
        next_serial=store.next_serial,
        accounts=dict(store.accounts),
        approaches=dict(store.approaches),
        authorisations=dict(store.authorisations),
        counted=dict(store.counted),
        blocks=dict(store.blocks),
        next_block_id=store.next_block_id,
        adjustments=list(store.adjustments),
        audit=list(store.audit),
        reservations=dict(store.reservations),
        idempotency=dict(store.idempotency),
        unit_announcements=list(store.unit_announcements),
        ndc_records=list(store.ndc_records),
    )


# -- the federation unit index (registry.application.custody.UnitIndexRepository) ------------


@dataclass
class InMemoryUnitIndexStore:
    """The unit index's committed state at one node: the twin of its three SQL tables."""

    # Per (approach, originating registry): segments sorted by first serial.
    segments: dict[RangeKey, list[Segment]] = field(default_factory=dict)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    applied: set[str] = field(default_factory=set)


class InMemoryUnitIndexRepository:
    """The index inside one transaction: what it changes stays here until ``publish``.

    Only the interval maps it touches are copied, so a record costs the size of its
    own map, not of the whole index.
    """

    def __init__(self, store: InMemoryUnitIndexStore) -> None:
        self._store = store
        self._segments: dict[RangeKey, list[Segment]] = {}
        self._offsets: dict[tuple[str, int], int] = {}
        self._applied: set[str] = set()

    def _map(self, key: RangeKey) -> list[Segment]:
        if key not in self._segments:
            self._segments[key] = list(self._store.segments.get(key, ()))
        return self._segments[key]

    def segments(self, key: RangeKey, first: int, last: int) -> list[Segment]:
        """The segments overlapping or touching ``first``..``last``."""
        found = self._segments.get(key)
        if found is None:
            found = self._store.segments.get(key, [])
        start = bisect.bisect_left(found, first - 1, key=lambda segment: segment.last)
        out: list[Segment] = []
        for segment in found[start:]:
            if segment.first > last + 1:
                break
            out.append(segment)
        return out

    def replace(self, key: RangeKey, old: Sequence[Segment], new: Sequence[Segment]) -> None:
        gone = {segment.first for segment in old}
        kept = [segment for segment in self._map(key) if segment.first not in gone]
        self._segments[key] = sorted([*kept, *new], key=lambda segment: segment.first)

    def all_segments(self) -> list[tuple[RangeKey, Segment]]:
        maps = {**self._store.segments, **self._segments}
        return [
            (key, segment)
            for key in sorted(
                maps, key=lambda k: (k.cooperative_approach_id, k.originating_registry_id)
            )
            for segment in maps[key]
        ]

    def claim(self, record_key: str) -> bool:
        """Mark a record folded in; False if it was already."""
        if record_key in self._applied or record_key in self._store.applied:
            return False
        self._applied.add(record_key)
        return True

    def offsets(self) -> dict[tuple[str, int], int]:
        return {**self._store.offsets, **self._offsets}

    def advance(self, topic: str, partition: int, next_offset: int) -> None:
        key = (topic, partition)
        current = self._offsets.get(key, self._store.offsets.get(key))
        if current is None or next_offset > current:
            self._offsets[key] = next_offset

    def publish(self) -> None:
        for key, segments in self._segments.items():
            if segments:
                self._store.segments[key] = segments
            else:
                self._store.segments.pop(key, None)
        self._store.offsets.update(self._offsets)
        self._store.applied |= self._applied
        self._segments, self._offsets, self._applied = {}, {}, set()


class InMemoryUnitIndexUnitOfWork:
    """One transaction on an :class:`InMemoryUnitIndexStore`; leaving without commit drops it."""

    index: InMemoryUnitIndexRepository

    def __init__(self, store: InMemoryUnitIndexStore) -> None:
        self._store = store

    def __enter__(self) -> Self:
        self.index = InMemoryUnitIndexRepository(self._store)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.index = InMemoryUnitIndexRepository(self._store)

    def commit(self) -> None:
        self.index.publish()
