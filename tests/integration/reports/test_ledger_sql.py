"""The report queries on SQL (SQLite and PostgreSQL): a sender on SQL trades with an
in-memory receiver through the ledger handlers, and the two exports agree."""

from __future__ import annotations

import copy

from sqlalchemy import Engine

from registry.adapters.in_memory import InMemoryUnitOfWork
from registry.adapters.unit_of_work import SqlAlchemyUnitOfWork
from registry.domain.audit import AuditAction
from registry.reports import DisagreementKind, check_aef, find_disagreements
from tests.unit.application.support import Ledger
from tests.unit.reports.support import REPORTED_YEAR, actions, export, trade


def _traded(engine: Engine) -> tuple[Ledger, Ledger]:
    sender = Ledger(SqlAlchemyUnitOfWork(engine))
    receiver = Ledger(InMemoryUnitOfWork())
    trade(sender, receiver)
    return sender, receiver


def test_sql_and_in_memory_exports_agree(engine: Engine) -> None:
    sql_sender, receiver = _traded(engine)
    memory_sender, _ = _traded_in_memory()
    sql_document, memory_document = export(sql_sender), export(memory_sender)
    assert check_aef(sql_document) == []
    assert sql_document == memory_document
    assert find_disagreements([sql_document, export(receiver)]) == []
    corrupted = copy.deepcopy(export(receiver))
    actions(corrupted)[0]["quantity"] -= 1
    kinds = [d.kind for d in find_disagreements([sql_document, corrupted])]
    assert kinds == [DisagreementKind.QUANTITY]


def _traded_in_memory() -> tuple[Ledger, Ledger]:
    sender, receiver = Ledger(InMemoryUnitOfWork()), Ledger(InMemoryUnitOfWork())
    trade(sender, receiver)
    return sender, receiver


def test_the_new_queries_match_the_in_memory_twin(engine: Engine) -> None:
    sql_sender, _ = _traded(engine)
    memory_sender, _ = _traded_in_memory()
    for ledger in (sql_sender, memory_sender):
        ledger.uow.__enter__()
    try:
        sql, memory = sql_sender.uow, memory_sender.uow
        assert sql.blocks.quantities_by_class() == memory.blocks.quantities_by_class()
        assert sql.authorisations.list_current("CHE") == memory.authorisations.list_current("CHE")
        assert sql.authorisations.list_versions("CHE") == memory.authorisations.list_versions("CHE")
        start = sql_sender.clock.current.replace(month=1, day=1, hour=0, minute=0)
        end = sql_sender.clock.current
        assert sql.audit.between(start, end) == memory.audit.between(start, end)
        assert sql.audit.between(None, end)[0].action is AuditAction.ISSUANCE
        assert sql.audit.between(None, start) == []
    finally:
        for ledger in (sql_sender, memory_sender):
            ledger.uow.__exit__(None, None, None)
    assert sql_sender.query("report_source", REPORTED_YEAR).audit
