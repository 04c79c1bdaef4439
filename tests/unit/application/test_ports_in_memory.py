"""Every port contract on the in-memory fake."""

from __future__ import annotations

import pytest

from registry.adapters.in_memory import InMemoryUnitOfWork
from registry.application.ports import UnitOfWork
from tests.unit.application import port_contracts as contracts


class InMemoryBackend:
    @pytest.fixture
    def uow(self) -> UnitOfWork:
        return InMemoryUnitOfWork()


class TestUnitOfWork(InMemoryBackend, contracts.UnitOfWorkContract): ...


class TestRegistryNodeRepository(InMemoryBackend, contracts.RegistryNodeRepositoryContract): ...


class TestAccountRepository(InMemoryBackend, contracts.AccountRepositoryContract): ...


class TestApproachRepository(InMemoryBackend, contracts.CooperativeApproachRepositoryContract): ...


class TestAuthorisationRepository(InMemoryBackend, contracts.AuthorisationRepositoryContract): ...


class TestBlockRepository(InMemoryBackend, contracts.BlockRepositoryContract): ...


class TestAdjustmentRepository(InMemoryBackend, contracts.AdjustmentRepositoryContract): ...


class TestAuditRepository(InMemoryBackend, contracts.AuditRepositoryContract): ...


class TestReservationRepository(InMemoryBackend, contracts.ReservationRepositoryContract): ...


class TestIdempotencyRepository(InMemoryBackend, contracts.IdempotencyRepositoryContract): ...


def test_every_port_contract_runs_here() -> None:
    local = {
        cls.__mro__[2]
        for cls in globals().values()
        if isinstance(cls, type) and cls.__name__.startswith("Test")
    }
    assert local == set(contracts.PORT_CONTRACTS)
