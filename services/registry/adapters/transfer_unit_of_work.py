"""Units of work for the transfer handlers: the ledger's, plus protocol state and messaging.

Both are re-entrant (``registry.application.transfers.ports``): the ledger
handlers open ``with uow:`` and ``commit()`` themselves, and when a transfer
handler calls them inside its own unit of work that inner block must be a
savepoint, not a transaction of its own, or a crash between the two commits
could debit without recording the decision, or vote without holding.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Self
from uuid import UUID

from sqlalchemy import Engine, NestedTransaction
from sqlalchemy.exc import SQLAlchemyError

from a6wire.messages import Envelope
from registry.adapters.in_memory import InMemoryStore, InMemoryUnitLog, InMemoryUnitOfWork
from registry.adapters.transfer_repositories import (
    SqlDecisionRepository,
    SqlInboxPort,
    SqlOutboxPort,
    SqlTransferStateRepository,
)
from registry.adapters.unit_index import UnitLogPublisher
from registry.adapters.unit_of_work import SqlAlchemyUnitOfWork
from registry.application.ports import StorageUnavailableError
from registry.application.transfers.ports import TransferRecord, TransferStatus
from registry.domain.custody import UnitAnnouncement
from registry.protocol.arbiter import TransferKey


class SqlTransferUnitOfWork(SqlAlchemyUnitOfWork):
    """The SQL unit of work with the transfer repositories; nested blocks are savepoints."""

    transfers: SqlTransferStateRepository
    decisions: SqlDecisionRepository
    outbox: SqlOutboxPort
    inbox: SqlInboxPort

    def __init__(self, engine: Engine, unit_log: UnitLogPublisher | None = None) -> None:
        super().__init__(engine, unit_log)
        self._savepoints: list[NestedTransaction] = []
        self._depth = 0

    def __enter__(self) -> Self:
        if self._depth == 0:
            try:
                super().__enter__()
            except SQLAlchemyError as error:
                raise StorageUnavailableError(f"database: {type(error).__name__}") from error
            connection = self._connection
            if connection is None:
                raise RuntimeError("the unit of work has no connection")
            self.transfers = SqlTransferStateRepository(connection)
            self.decisions = SqlDecisionRepository(connection)
            self.outbox = SqlOutboxPort(connection)
            self.inbox = SqlInboxPort(connection)
        else:
            if self._connection is None:
                raise RuntimeError("the unit of work has no connection")
            self._savepoints.append(self._connection.begin_nested())
        self._depth += 1
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._depth -= 1
        if self._depth == 0:
            try:
                super().__exit__(exc_type, exc, traceback)
            except SQLAlchemyError as error:
                raise StorageUnavailableError(f"database: {type(error).__name__}") from error
            # The driver's error stops here: callers (the bus) see the project's own.
            if isinstance(exc, SQLAlchemyError):
                raise StorageUnavailableError(f"database: {type(exc).__name__}") from exc
            return
        savepoint = self._savepoints.pop()
        if savepoint.is_active:
            savepoint.rollback()

    def commit(self) -> None:
        if self._depth > 1:
            savepoint = self._savepoints[-1]
            if savepoint.is_active:
                savepoint.commit()  # RELEASE SAVEPOINT: the outer commit decides
            return
        super().commit()

    def rollback(self) -> None:
        if self._depth > 1:
            savepoint = self._savepoints[-1]
            if savepoint.is_active:
                savepoint.rollback()
            return
        super().rollback()


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    topic: str
    key: bytes | None
    value: bytes
    headers: dict[str, str]


@dataclass
class InMemoryTransferStore:
    """The transfer protocol's part of one node's store."""

    transfers: dict[TransferKey, TransferRecord] = field(default_factory=dict)
    decisions: dict[TransferKey, Envelope] = field(default_factory=dict)
    outbox: list[OutboxMessage] = field(default_factory=list)
    inbox: set[str] = field(default_factory=set)


def _copied(store: InMemoryTransferStore) -> InMemoryTransferStore:
    return InMemoryTransferStore(
        transfers=dict(store.transfers),
        decisions=dict(store.decisions),
        outbox=list(store.outbox),
        inbox=set(store.inbox),
    )


def _copied_ledger(store: InMemoryStore) -> InMemoryStore:
    # Field by field, so a field another change adds to the store is copied too.
    return InMemoryStore(
        **{f.name: copy.copy(getattr(store, f.name)) for f in dataclasses.fields(store)}
    )


class _InMemoryPart:
    def __init__(self, uow: InMemoryTransferUnitOfWork) -> None:
        self._uow = uow

    @property
    def _store(self) -> InMemoryTransferStore:
        return self._uow.transfer_working


class InMemoryTransferStateRepository(_InMemoryPart):
    def get(self, key: TransferKey) -> TransferRecord | None:
        return self._store.transfers.get(key)

    def put(self, record: TransferRecord) -> None:
        self._store.transfers[record.key] = record

    def find(self, transfer_id: UUID) -> list[TransferRecord]:
        found = [r for r in self._store.transfers.values() if r.transfer_id == transfer_id]
        return sorted(found, key=lambda record: record.created_at)

    def recent(self, *, status: TransferStatus | None, limit: int) -> list[TransferRecord]:
        found = [r for r in self._store.transfers.values() if status is None or r.status is status]
        found.sort(key=lambda record: str(record.transfer_id))
        found.sort(key=lambda record: record.created_at, reverse=True)
        return found[:limit]

    def due(self, now: datetime, limit: int) -> list[TransferKey]:
        found = [
            r
            for r in self._store.transfers.values()
            if r.next_wake_at is not None and r.next_wake_at <= now
        ]
        found.sort(key=lambda record: record.next_wake_at or now)
        return [record.key for record in found[:limit]]

    def unfinished(self, limit: int) -> list[TransferKey]:
        found = [r for r in self._store.transfers.values() if not r.completed]
        found.sort(key=lambda record: record.created_at)
        return [record.key for record in found[:limit]]


class InMemoryDecisionRepository(_InMemoryPart):
    def winner(self, key: TransferKey) -> Envelope | None:
        return self._store.decisions.get(key)

    def keep(self, key: TransferKey, record: Envelope, read_at: datetime) -> None:
        if key in self._store.decisions:
            raise ValueError(f"a decision for {key} was kept already")
        self._store.decisions[key] = record


class InMemoryOutboxPort(_InMemoryPart):
    def add(self, topic: str, key: bytes | None, value: bytes, headers: Mapping[str, str]) -> None:
        self._store.outbox.append(OutboxMessage(topic, key, value, dict(headers)))


class InMemoryInboxPort(_InMemoryPart):
    def seen_before(self, message_id: str) -> bool:
        return message_id in self._store.inbox

    def record(self, message_id: str, topic: str, partition: int, offset: int) -> None:
        if message_id in self._store.inbox:
            raise ValueError(f"message {message_id} is already in the inbox")
        self._store.inbox.add(message_id)


class OutboxUnitLog(InMemoryUnitLog):
    """The unit log as ``SqlUnitLog`` writes it: signed records in the transaction's outbox.

    The announcements are also kept in the ledger store, as ``InMemoryUnitLog`` keeps them.
    """

    def __init__(self, uow: InMemoryTransferUnitOfWork, publisher: UnitLogPublisher) -> None:
        super().__init__(uow)
        self._transfer_uow = uow
        self._publisher = publisher

    def announce(self, announcements: Sequence[UnitAnnouncement]) -> None:
        super().announce(announcements)
        for row in self._publisher.rows(announcements):
            self._transfer_uow.outbox.add(row.topic, row.key, row.value, row.headers)


class InMemoryTransferUnitOfWork(InMemoryUnitOfWork):
    """The in-memory twin of ``SqlTransferUnitOfWork``, nested blocks included.

    With ``unit_log`` (a publisher), announcements go to its outbox as signed
    records, as the SQL unit of work writes them; without, to the ledger store only.
    """

    def __init__(
        self,
        store: InMemoryStore | None = None,
        transfer_store: InMemoryTransferStore | None = None,
        *,
        unit_log: UnitLogPublisher | None = None,
    ) -> None:
        super().__init__(store)
        if unit_log is not None:
            self.unit_log = OutboxUnitLog(self, unit_log)
        self.transfer_store = (
            transfer_store if transfer_store is not None else (InMemoryTransferStore())
        )
        self.transfer_working = self.transfer_store
        self.transfers = InMemoryTransferStateRepository(self)
        self.decisions = InMemoryDecisionRepository(self)
        self.outbox = InMemoryOutboxPort(self)
        self.inbox = InMemoryInboxPort(self)
        # One (ledger, transfers) snapshot per open savepoint; None once released.
        self._savepoints: list[tuple[InMemoryStore, InMemoryTransferStore] | None] = []
        self._depth = 0

    def __enter__(self) -> Self:
        if self._depth == 0:
            try:
                super().__enter__()
            except SQLAlchemyError as error:
                raise StorageUnavailableError(f"database: {type(error).__name__}") from error
            self.transfer_working = _copied(self.transfer_store)
        else:
            self._savepoints.append((_copied_ledger(self.working), _copied(self.transfer_working)))
        self._depth += 1
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._depth -= 1
        if self._depth == 0:
            super().__exit__(exc_type, exc, traceback)
            self.transfer_working = self.transfer_store
            return
        snapshot = self._savepoints.pop()
        if snapshot is not None:
            self.working, self.transfer_working = snapshot

    def commit(self) -> None:
        if self._depth > 1:
            self._savepoints[-1] = None
            return
        self.transfer_store.__dict__.update(_copied(self.transfer_working).__dict__)
        self.transfer_working = self.transfer_store
        super().commit()

    def rollback(self) -> None:
        if self._depth > 1:
            snapshot = self._savepoints[-1]
            if snapshot is not None:
                self.working = _copied_ledger(snapshot[0])
                self.transfer_working = _copied(snapshot[1])
            return
        super().rollback()
        self.transfer_working = _copied(self.transfer_store)
