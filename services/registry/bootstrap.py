"""The one composition root: settings → engine → migrations → unit of work → Node.

Entrypoints (the API, the CLI, later the bus) receive a ``Node`` and reach the
ledger only through it; nothing else builds engines or reads settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

import structlog
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from registry.adapters.database import make_engine, upgrade_database
from registry.adapters.unit_of_work import SqlAlchemyUnitOfWork
from registry.application import handlers
from registry.application.commands import InitialiseRegistry
from registry.application.ports import Clock, UnitOfWork
from registry.domain.errors import DomainError, ReasonCode
from registry.settings import Settings

log = structlog.get_logger(__name__)


class SystemClock:
    """Wall-clock time in UTC; tests pass a fixed clock instead."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class BootstrapError(Exception):
    """The node cannot start as configured; the message says what to change."""


@dataclass(frozen=True)
class Node:
    """Everything an entrypoint needs to serve one Party's registry."""

    settings: Settings
    engine: Engine
    unit_of_work: Callable[[], UnitOfWork]
    clock: Clock

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


def build_node(settings: Settings, *, migrate: bool = True, clock: Clock | None = None) -> Node:
    """Wire one node; with ``migrate`` also bring the database up to date and record
    the registry's identity on first start."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url
    if migrate:
        upgrade_database(url)
    engine = make_engine(url)

    def unit_of_work() -> UnitOfWork:
        # A fresh unit of work per command: each is one transaction on a pooled connection.
        # The cast stands in for structural typing that mypy refuses only because the
        # port declares repositories as mutable attributes (invariant); read-only
        # properties in the port would make it unnecessary.
        return cast(UnitOfWork, SqlAlchemyUnitOfWork(engine))

    node = Node(settings, engine, unit_of_work, clock or SystemClock())
    if migrate:
        _ensure_identity(node)
    return node


def _ensure_identity(node: Node) -> None:
    """Record this registry's Party and id on first start; refuse a database of another."""
    settings = node.settings
    try:
        recorded = handlers.get_registry_node(node.unit_of_work(), node.clock)
    except DomainError as error:
        if error.reason is not ReasonCode.REGISTRY_NOT_INITIALISED:
            raise
        command = InitialiseRegistry(party=settings.party, registry_id=settings.registry_id)
        handlers.initialise_registry(node.unit_of_work(), node.clock, command)
        log.info("registry initialised", party=settings.party, registry_id=settings.registry_id)
        return
    if (recorded.party, recorded.registry_id) != (settings.party, settings.registry_id):
        raise BootstrapError(
            f"the database belongs to registry {recorded.registry_id} of {recorded.party}, "
            f"not {settings.registry_id} of {settings.party}: check REGISTRY_DATABASE_URL"
        )
