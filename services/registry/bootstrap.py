"""The one composition root: settings → engine → migrations → unit of work → Node.

Entrypoints (the API, the CLI, later the bus) receive a ``Node`` and reach the
ledger only through it; nothing else builds engines or reads settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from registry.application.ports import UnitOfWork
from registry.settings import Settings

log = structlog.get_logger(__name__)


class SystemClock:
    """Wall-clock time in UTC; tests pass a fixed clock instead."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class Node:
    """Everything an entrypoint needs to serve one Party's registry."""

    settings: Settings
    engine: Engine
    unit_of_work: Callable[[], UnitOfWork]
    clock: SystemClock

    def database_reachable(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError:
            log.warning("database unreachable", exc_info=True)
            return False
        return True

    def close(self) -> None:
        self.engine.dispose()


def build_node(settings: Settings, *, migrate: bool = True) -> Node:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.resolved_database_url)

    def unit_of_work() -> UnitOfWork:
        raise NotImplementedError("the SQLAlchemy unit of work has not landed yet")

    return Node(settings=settings, engine=engine, unit_of_work=unit_of_work, clock=SystemClock())
