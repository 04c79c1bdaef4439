"""Alembic environment: migrates the database named by the config's sqlalchemy.url."""

from __future__ import annotations

from alembic import context

# Reconciliation's snapshots and findings (revision 0010).
from registry.adapters import reconciliation as _reconciliation  # noqa: F401

# The transfer protocol's tables (revision 0004) go on the same metadata this way.
from registry.adapters import transfer_tables as _transfer_tables  # noqa: F401

# The federation unit index (revision 0009).
from registry.adapters import unit_index as _unit_index  # noqa: F401
from registry.adapters.database import make_engine

# Importing the messaging tables puts the outbox and inbox (revision 0002) on
# the ledger's metadata, so autogenerate sees the whole database.
from registry.adapters.messaging import tables as _messaging_tables  # noqa: F401
from registry.adapters.tables import metadata


def run_migrations_online() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("set sqlalchemy.url (upgrade_database does) before migrating")
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            # render_as_batch lets later revisions alter SQLite tables by copying them.
            context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported")
run_migrations_online()
