"""The conservation state machine again, on a real SQLite file: fewer, slower examples."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import settings

from registry.adapters.database import make_engine, upgrade_database
from registry.adapters.unit_of_work import SqlAlchemyUnitOfWork
from registry.application.ports import UnitOfWork
from tests.unit.application.test_ledger_properties import LedgerMachine


class SqliteLedgerMachine(LedgerMachine):
    def make_uow(self) -> UnitOfWork:
        # Hypothesis builds one machine per example; each gets its own database file.
        self._directory = tempfile.TemporaryDirectory()
        url = f"sqlite:///{Path(self._directory.name) / 'node.db'}"
        upgrade_database(url)
        self._engine = make_engine(url)
        return SqlAlchemyUnitOfWork(self._engine)

    def teardown(self) -> None:
        self._engine.dispose()
        self._directory.cleanup()


SqliteLedgerMachine.TestCase.settings = settings(
    max_examples=8, stateful_step_count=25, deadline=None
)
TestSqliteLedgerMachine = SqliteLedgerMachine.TestCase
