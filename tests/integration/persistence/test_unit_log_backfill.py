"""Units of a ledger from before the unit log get announced once, through the outbox.

The database is created by Alembic at ``0008_aef_fields`` (the revision before
``0009_unit_index``) and filled by the ledger handlers as a node of that time did:
issuances and a cancellation, none of them announced. Then it is migrated to head,
issues once more (announced in its own transaction, as every node now does), and
``backfill_unit_log`` runs: it announces exactly the old issuances and the
cancellation, a second run announces nothing, and a unit index fed with the node's
unit-log records then knows who holds every unit. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest
from sqlalchemy import Engine, select

from a6wire.directory import FederationDirectory, FederationMember
from a6wire.keys import generate_private_key, public_key_base64
from a6wire.topics import inbox_topic
from a6wire.verification import decode_envelope, verify_signature
from registry.adapters.database import make_engine, upgrade_database
from registry.adapters.messaging import MESSAGING_TABLES
from registry.adapters.unit_index import SqlUnitIndexUnitOfWork, UnitLogPublisher
from registry.adapters.unit_of_work import SqlAlchemyUnitOfWork
from registry.application.commands import CancelVoluntarily
from registry.application.custody import UnitIndex
from registry.application.transfers import KeySigner, MessagePosition
from registry.application.unit_log_backfill import UnitLogBackfillError, backfill_unit_log
from registry.domain.custody import RangeKey, UnitEventKind, check_custody, holdings_by_party
from registry.domain.errors import ReasonCode
from registry.domain.selection import SerialRangeSelection
from tests.unit.application.support import (
    APPROACH_ID,
    PARTY,
    REGISTRY_ID,
    Ledger,
    authorisation,
    line,
    set_up_registry,
)

BEFORE_THE_UNIT_LOG = "0008_aef_fields"
UNIT_LOG = "a6.units"
KEY = generate_private_key()
DIRECTORY = FederationDirectory(
    members=(
        FederationMember(
            party=PARTY,
            registry_id=REGISTRY_ID,
            public_key_base64=public_key_base64(KEY),
            inbox_topic=inbox_topic(PARTY),
        ),
    )
)


@pytest.fixture
def old_engine(database_url: str) -> Iterator[Engine]:
    upgrade_database(database_url, BEFORE_THE_UNIT_LOG)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _old_ledger(engine: Engine) -> Ledger:
    """100 units (1-100) to CHE-A, 50 of vintage 2026 (101-150) to CHE-B, 91-100 cancelled."""
    ledger = Ledger(SqlAlchemyUnitOfWork(engine))  # no unit log: as before 0009
    set_up_registry(ledger, loa=authorisation())
    ledger.issue("CHE-A", line(100))
    ledger.issue("CHE-B", line(50, vintage=2026))
    ledger.run(CancelVoluntarily("CHE-A", SerialRangeSelection(REGISTRY_ID, 91, 100)))
    return ledger


def _unit_log_rows(engine: Engine) -> list[bytes]:
    outbox = MESSAGING_TABLES.outbox
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(outbox.c.value).where(outbox.c.topic == UNIT_LOG).order_by(outbox.c.id)
            ).scalars()
        )


def test_a_ledger_from_before_the_unit_log_is_announced_once(
    database_url: str, old_engine: Engine
) -> None:
    old = _old_ledger(old_engine)
    upgrade_database(database_url)
    publisher = UnitLogPublisher(KeySigner(PARTY, KEY).seal, UNIT_LOG, old.clock.now)
    now = Ledger(SqlAlchemyUnitOfWork(old_engine, publisher), old.clock)
    now.issue("CHE-A", line(20))  # 151-170, announced with its issuance

    result = backfill_unit_log(SqlAlchemyUnitOfWork(old_engine, publisher))

    assert sorted((a.event, a.first_serial, a.last_serial) for a in result.announced) == [
        (UnitEventKind.CANCELLED, 91, 100),
        (UnitEventKind.ISSUED, 1, 100),
        (UnitEventKind.ISSUED, 101, 150),
    ]
    assert {(a.party, a.vintage) for a in result.announced} == {(PARTY, 2025), (PARTY, 2026)}
    rows = _unit_log_rows(old_engine)
    assert len(rows) == 4  # the new issuance and the three backfilled records
    assert backfill_unit_log(SqlAlchemyUnitOfWork(old_engine, publisher)).announced == ()
    assert _unit_log_rows(old_engine) == rows

    # What any node's index makes of the unit log once the relay published those rows.
    index = UnitIndex(
        lambda: SqlUnitIndexUnitOfWork(old_engine), partial(verify_signature, directory=DIRECTORY)
    )
    for offset, value in enumerate(rows):
        index.handle_unit_record(decode_envelope(value), MessagePosition(UNIT_LOG, 0, offset))
    segments = [segment for key, segment in index.holdings()]
    assert {key for key, _ in index.holdings()} == {RangeKey(APPROACH_ID, REGISTRY_ID)}
    assert holdings_by_party(segments) == {PARTY: [(1, 90), (101, 150), (151, 170)]}

    def custody(first: int, last: int, vintage: int = 2025) -> tuple[ReasonCode, ...]:
        return check_custody(segments, first, last, sender=PARTY, vintage=vintage, metric="tCO2e")

    assert custody(1, 90) == ()
    assert custody(101, 150, vintage=2026) == ()
    assert custody(91, 100) == (ReasonCode.UNITS_OUT_OF_CIRCULATION,)
    assert custody(171, 180) == (ReasonCode.UNITS_NOT_ISSUED,)


def test_a_node_that_announces_nothing_refuses_to_backfill_and_writes_nothing(
    database_url: str, old_engine: Engine
) -> None:
    _old_ledger(old_engine)
    upgrade_database(database_url)
    with pytest.raises(UnitLogBackfillError, match="announces nothing"):
        backfill_unit_log(SqlAlchemyUnitOfWork(old_engine))  # API-only: no publisher
    assert _unit_log_rows(old_engine) == []
