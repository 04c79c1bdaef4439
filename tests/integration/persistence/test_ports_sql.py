"""Every port contract on the SQLAlchemy adapter, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from registry.adapters.unit_of_work import SqlAlchemyUnitOfWork
from registry.application.ports import UnitOfWork
from tests.unit.application import port_contracts as contracts


class SqlBackend:
    @pytest.fixture
    def uow(self, engine: Engine) -> UnitOfWork:
        return SqlAlchemyUnitOfWork(engine)


class TestUnitOfWork(SqlBackend, contracts.UnitOfWorkContract): ...


class TestRegistryNodeRepository(SqlBackend, contracts.RegistryNodeRepositoryContract): ...


class TestAccountRepository(SqlBackend, contracts.AccountRepositoryContract): ...


class TestApproachRepository(SqlBackend, contracts.CooperativeApproachRepositoryContract): ...


class TestAuthorisationRepository(SqlBackend, contracts.AuthorisationRepositoryContract): ...


class TestBlockRepository(SqlBackend, contracts.BlockRepositoryContract): ...


class TestAdjustmentRepository(SqlBackend, contracts.AdjustmentRepositoryContract): ...


class TestAuditRepository(SqlBackend, contracts.AuditRepositoryContract): ...


class TestReservationRepository(SqlBackend, contracts.ReservationRepositoryContract): ...


class TestIdempotencyRepository(SqlBackend, contracts.IdempotencyRepositoryContract): ...


def test_every_port_contract_runs_here() -> None:
    local = {
        cls.__mro__[2]
        for cls in globals().values()
        if isinstance(cls, type) and cls.__name__.startswith("Test")
    }
    assert local == set(contracts.PORT_CONTRACTS)
