"""Concurrent commands on one account cannot spend the same units twice."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine

from registry.adapters.unit_of_work import SqlAlchemyUnitOfWork
from registry.application.commands import ReserveForTransfer, TransferInternally
from registry.domain.authorisations import Purpose
from registry.domain.errors import DomainError, ReasonCode
from registry.domain.selection import QuantitySelection
from tests.unit.application.handler_contract import ready
from tests.unit.application.support import PARTNER, Ledger

WORKERS = 6


def test_concurrent_spends_of_one_account_never_overdraw(engine: Engine) -> None:
    ready(Ledger(SqlAlchemyUnitOfWork(engine)))  # 100 units in CHE-A
    start = threading.Barrier(WORKERS)

    def spend(index: int) -> ReasonCode | None:
        # One unit of work per thread, as each request of the API gets its own.
        ledger = Ledger(SqlAlchemyUnitOfWork(engine))
        command: object = (
            ReserveForTransfer(f"T{index}", "CHE-A", QuantitySelection(30), PARTNER, Purpose.NDC)
            if index % 2
            else TransferInternally("CHE-A", "CHE-B", QuantitySelection(30))
        )
        start.wait()
        try:
            ledger.run(command)
        except DomainError as error:
            return error.reason
        return None

    with ThreadPoolExecutor(WORKERS) as pool:
        outcomes = list(pool.map(spend, range(WORKERS)))
    assert outcomes.count(None) == 3
    assert set(outcomes) - {None} == {ReasonCode.INSUFFICIENT_UNITS}
    totals = Ledger(SqlAlchemyUnitOfWork(engine)).query("ledger_totals")
    assert (totals.held + totals.reserved, totals.conserved) == (100, True)
