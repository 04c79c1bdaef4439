"""A row survives a round trip through SQLAlchemy 2 on SQLite and on PostgreSQL.

Also pins down the one difference the ledger must paper over: SQLite has no time zones, so
a plain ``DateTime(timezone=True)`` column hands back naive datetimes there, while
PostgreSQL's ``timestamptz`` hands back aware ones. A column type that stores UTC and
re-attaches it (``UTCDateTime`` below) reads the same on both.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import BigInteger, DateTime, Dialect, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.types import TypeDecorator

pytestmark = pytest.mark.integration

# Past 2**31 (int4 overflow) and 2**53 (where a float would silently round).
SERIAL_BEYOND_INT32_AND_FLOAT = 2**53 + 12_345
# A non-UTC offset with minutes, so a dropped or misapplied offset cannot go unnoticed.
RECORDED_AT = datetime(
    2025, 3, 14, 9, 26, 53, 589_793, tzinfo=timezone(timedelta(hours=5, minutes=45))
)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC, read back aware on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: the ledger stores instants, give a time zone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # SQLite returns what was stored (UTC) without tzinfo.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class LedgerEntry(Base):
    __tablename__ = "ledger_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    quantity: Mapped[int]
    holder: Mapped[str] = mapped_column(String(64))
    serial: Mapped[int] = mapped_column(BigInteger)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at_plain: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def test_a_row_round_trips(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        Base.metadata.create_all(engine)
        with Session(engine) as session, session.begin():
            session.add(
                LedgerEntry(
                    quantity=1_000,
                    holder="THA01 holding account ✓",
                    serial=SERIAL_BEYOND_INT32_AND_FLOAT,
                    recorded_at=RECORDED_AT,
                    recorded_at_plain=RECORDED_AT,
                )
            )
        with Session(engine) as session:
            entry = session.scalars(select(LedgerEntry)).one()
            assert entry.id == 1
            assert entry.quantity == 1_000
            assert entry.holder == "THA01 holding account ✓"
            assert entry.serial == SERIAL_BEYOND_INT32_AND_FLOAT
            assert isinstance(entry.serial, int)
            assert entry.recorded_at == RECORDED_AT
            assert entry.recorded_at.tzinfo is UTC

            if engine.dialect.name == "sqlite":
                # The naive value SQLite gives back is the wall-clock time as written, the
                # offset silently dropped: never compare it with an aware datetime.
                assert entry.recorded_at_plain.tzinfo is None
                assert entry.recorded_at_plain == RECORDED_AT.replace(tzinfo=None)
            else:
                assert entry.recorded_at_plain.tzinfo is not None
                assert entry.recorded_at_plain == RECORDED_AT

            # Filtering by the big integer works in SQL, not only in Python.
            found = session.scalars(
                select(LedgerEntry.id).where(LedgerEntry.serial == SERIAL_BEYOND_INT32_AND_FLOAT)
            ).all()
            assert found == [1]
    finally:
        engine.dispose()


def test_each_test_gets_an_empty_database(database_url: str) -> None:
    # Runs after (or before) the round trip: the table must not be there yet.
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            assert not engine.dialect.has_table(connection, LedgerEntry.__tablename__)
    finally:
        engine.dispose()
