"""Alembic migrations of the ledger schema.

Run them with ``registry.adapters.database.upgrade_database(url)``.
"""
