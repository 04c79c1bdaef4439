"""Engines and schema migrations: ``make_engine(url)`` and ``upgrade_database(url)``.

SQLite (a file per node) is the default; PostgreSQL is selected by a
``postgresql+psycopg://`` URL. Connection options are set here explicitly
rather than left to driver defaults.
"""

from __future__ import annotations

from importlib import resources
from types import TracebackType
from typing import Any, Self

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, RootTransaction, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from registry.application.ports import StorageUnavailableError

# How long a SQLite writer waits for another writer's lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 10_000
POSTGRES_CONNECT_TIMEOUT_S = 10
POSTGRES_POOL_SIZE = 5
POSTGRES_POOL_OVERFLOW_MAX = 10


def make_engine(url: str) -> Engine:
    """An engine for a node's ledger database, with the settings the ledger relies on."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(
        url,
        isolation_level="READ COMMITTED",
        pool_pre_ping=True,
        pool_size=POSTGRES_POOL_SIZE,
        max_overflow=POSTGRES_POOL_OVERFLOW_MAX,
        connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S},
    )


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN, not pysqlite.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            # With WAL, NORMAL is durable across application crashes; only an OS
            # crash can lose the last transactions, never corrupt the file.
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Take the write lock up front: a read-then-write transaction that upgrades
        # its lock later can fail with "database is locked" regardless of busy_timeout.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config(url: str) -> Config:
    """Alembic configured from the installed package, no alembic.ini needed."""
    config = Config()
    config.set_main_option("script_location", str(resources.files("registry") / "migrations"))
    # ConfigParser interpolates '%', which URL-encoded passwords contain.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_database(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (creating every table on a new one)."""
    command.upgrade(alembic_config(url), revision)


class SqlTransaction:
    """One transaction on one connection, for a unit of work over a few tables.

    A subclass builds its repositories over the connection in ``_opened``; a
    ``repeatable_read`` one reads several tables at one point in time on
    PostgreSQL. Driver errors become ``StorageUnavailableError``: on entry, on
    commit, and when one escapes the ``with`` block.
    """

    repeatable_read = False

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None
        self._transaction: RootTransaction | None = None

    def _opened(self, connection: Connection) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self._connection = self._engine.connect()
            if self.repeatable_read and self._engine.dialect.name == "postgresql":
                self._connection = self._connection.execution_options(
                    isolation_level="REPEATABLE READ"
                )
            self._transaction = self._connection.begin()
        except SQLAlchemyError as error:
            raise StorageUnavailableError(f"database: {type(error).__name__}") from error
        self._opened(self._connection)
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
        except SQLAlchemyError:
            pass  # the connection is closed below; nothing was committed
        finally:
            if self._connection is not None:
                self._connection.close()
            self._connection = None
            self._transaction = None
        if isinstance(exc, SQLAlchemyError):
            raise StorageUnavailableError(f"database: {type(exc).__name__}") from exc

    def commit(self) -> None:
        if self._transaction is None:
            raise RuntimeError("commit outside a unit of work")
        try:
            self._transaction.commit()
        except SQLAlchemyError as error:
            raise StorageUnavailableError(f"database: {type(error).__name__}") from error
