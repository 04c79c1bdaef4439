"""The handler contract on the SQLAlchemy unit of work, on SQLite and PostgreSQL.

The counterpart registry of a cross-border transfer runs in memory: what crosses
between the two is the plain ``BlockSpec`` the protocol carries, and the
contract runs each side on the database in one test or another.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from registry.adapters.in_memory import InMemoryUnitOfWork
from registry.adapters.unit_of_work import SqlAlchemyUnitOfWork
from tests.unit.application.handler_contract import LedgerHandlerContract
from tests.unit.application.support import Ledger


class TestHandlersSql(LedgerHandlerContract):
    @pytest.fixture
    def ledger(self, engine: Engine) -> Ledger:
        return Ledger(SqlAlchemyUnitOfWork(engine))

    @pytest.fixture
    def other_ledger(self) -> Ledger:
        return Ledger(InMemoryUnitOfWork())
