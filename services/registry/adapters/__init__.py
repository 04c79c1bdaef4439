"""Adapters: the SQLAlchemy ledger store, its migrations, and an in-memory twin for tests."""
