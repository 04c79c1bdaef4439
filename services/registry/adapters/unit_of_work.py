"""The SQLAlchemy unit of work: one connection, one transaction, per command."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine, RootTransaction

from registry.adapters.sql_repositories import (
    SqlAccountRepository,
    SqlAdjustmentRepository,
    SqlAuditRepository,
    SqlAuthorisationRepository,
    SqlBlockRepository,
    SqlCooperativeApproachRepository,
    SqlIdempotencyRepository,
    SqlNdcRepository,
    SqlRegistryNodeRepository,
    SqlReservationRepository,
)
from registry.adapters.unit_index import SqlUnitLog, UnitLogPublisher


class SqlAlchemyUnitOfWork:
    """``with uow:`` opens a transaction; ``commit()`` ends it; leaving otherwise rolls back.

    Reusable: each ``with`` block is a fresh transaction on a pooled connection.
    """

    registry_node: SqlRegistryNodeRepository
    accounts: SqlAccountRepository
    approaches: SqlCooperativeApproachRepository
    authorisations: SqlAuthorisationRepository
    blocks: SqlBlockRepository
    adjustments: SqlAdjustmentRepository
    audit: SqlAuditRepository
    reservations: SqlReservationRepository
    idempotency: SqlIdempotencyRepository
    unit_log: SqlUnitLog
    ndc: SqlNdcRepository

    def __init__(self, engine: Engine, unit_log: UnitLogPublisher | None = None) -> None:
        self._engine = engine
        # Announcements to the federation unit log; None in API-only mode.
        self._publisher = unit_log
        self._connection: Connection | None = None
        self._transaction: RootTransaction | None = None

    def __enter__(self) -> Self:
        if self._connection is not None:
            raise RuntimeError("this unit of work is already in a transaction")
        connection = self._engine.connect()
        self._connection = connection
        self._transaction = connection.begin()
        self.registry_node = SqlRegistryNodeRepository(connection)
        self.accounts = SqlAccountRepository(connection)
        self.approaches = SqlCooperativeApproachRepository(connection)
        self.authorisations = SqlAuthorisationRepository(connection)
        self.blocks = SqlBlockRepository(connection)
        self.adjustments = SqlAdjustmentRepository(connection)
        self.audit = SqlAuditRepository(connection)
        self.reservations = SqlReservationRepository(connection)
        self.idempotency = SqlIdempotencyRepository(connection)
        self.unit_log = SqlUnitLog(connection, self._publisher)
        self.ndc = SqlNdcRepository(connection)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if self._transaction is not None and self._transaction.is_active:
                self._transaction.rollback()
        finally:
            if self._connection is not None:
                self._connection.close()
            self._connection = None
            self._transaction = None

    def commit(self) -> None:
        if self._transaction is None:
            raise RuntimeError("commit outside a unit of work")
        self._transaction.commit()
        if self._publisher is not None and self.unit_log.wrote:
            self.unit_log.wrote = False
            self._publisher.committed()

    def rollback(self) -> None:
        if self._transaction is None:
            raise RuntimeError("rollback outside a unit of work")
        self._transaction.rollback()
