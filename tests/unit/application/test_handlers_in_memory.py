"""The handler contract on the in-memory unit of work."""

from __future__ import annotations

import pytest

from registry.adapters.in_memory import InMemoryUnitOfWork
from tests.unit.application.handler_contract import LedgerHandlerContract
from tests.unit.application.support import Ledger


class TestHandlersInMemory(LedgerHandlerContract):
    @pytest.fixture
    def ledger(self) -> Ledger:
        return Ledger(InMemoryUnitOfWork())

    @pytest.fixture
    def other_ledger(self) -> Ledger:
        return Ledger(InMemoryUnitOfWork())
