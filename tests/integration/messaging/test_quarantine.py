"""The SQL quarantine on SQLite and PostgreSQL: one bounded row per record coordinates."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, MetaData

from registry.adapters.messaging import (
    QUARANTINE_TABLE,
    InMemoryQuarantine,
    RefusedRecord,
    SqlQuarantine,
)
from registry.adapters.messaging.quarantine import (
    QUARANTINE_DETAIL_LENGTH_MAX_CHARS,
    QUARANTINE_KEY_PREFIX_MAX_BYTES,
    QUARANTINE_VALUE_PREFIX_MAX_BYTES,
    define_quarantine_table,
)
from registry.application.ports import StorageUnavailableError

TOPIC = "a6.node.GHA.inbox"


@pytest.fixture
def quarantine_engine(engine: Engine) -> Engine:
    QUARANTINE_TABLE.create(engine)  # dropped with the test's database
    return engine


def _refused(offset: int = 5, **changes: object) -> RefusedRecord:
    fields: dict[str, object] = {
        "topic": TOPIC,
        "partition": 1,
        "offset": offset,
        "key": b"transfer-key",
        "value": b"not json",
        "reason_code": "NOT_JSON",
        "detail": "not JSON: Expecting value",
        "transfer_id": None,
    }
    fields.update(changes)
    return RefusedRecord(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["sql", "memory"])
def test_a_record_is_quarantined_once_per_coordinates(kind: str, quarantine_engine: Engine) -> None:
    quarantine = SqlQuarantine(quarantine_engine) if kind == "sql" else InMemoryQuarantine()
    assert quarantine.record(_refused()) is True
    # The same coordinates again (a redelivery), even with another verdict: no second row.
    assert quarantine.record(_refused(reason_code="NOT_UTF8")) is False
    assert quarantine.record(_refused(offset=6)) is True
    if isinstance(quarantine, SqlQuarantine):
        rows = quarantine.rows(TOPIC)
        assert [(row.offset, row.reason_code) for row in rows] == [(5, "NOT_JSON"), (6, "NOT_JSON")]
    else:
        refused = quarantine.refused()
        assert [(r.offset, r.reason_code) for r in refused] == [(5, "NOT_JSON"), (6, "NOT_JSON")]


def test_only_a_bounded_prefix_of_a_hostile_record_is_kept(quarantine_engine: Engine) -> None:
    quarantine = SqlQuarantine(quarantine_engine)
    value = bytes(range(256)) * 4_000  # about 1 MB, with NULs and invalid UTF-8
    key = b"k" * (QUARANTINE_KEY_PREFIX_MAX_BYTES * 2)
    # A detail often quotes the hostile input: NULs and lone surrogates must still store.
    detail = "bad input \x00\udcff " + "x" * (QUARANTINE_DETAIL_LENGTH_MAX_CHARS * 2)
    assert quarantine.record(_refused(key=key, value=value, detail=detail))
    (row,) = quarantine.rows(TOPIC)
    assert row.value_prefix == value[:QUARANTINE_VALUE_PREFIX_MAX_BYTES]
    assert row.value_size_bytes == len(value)
    assert row.key == key[:QUARANTINE_KEY_PREFIX_MAX_BYTES]
    assert row.detail.startswith("bad input \\x00\\udcff x")
    assert len(row.detail) == QUARANTINE_DETAIL_LENGTH_MAX_CHARS
    assert (row.partition, row.offset) == (1, 5)
    assert row.quarantined_at.tzinfo is not None


def test_a_database_failure_is_the_projects_own_error(engine: Engine) -> None:
    # The table was never created: the driver's error must not leak out of the adapter.
    missing = define_quarantine_table(MetaData())
    quarantine = SqlQuarantine(engine, missing)
    with pytest.raises(StorageUnavailableError):
        quarantine.record(_refused())
    with pytest.raises(StorageUnavailableError):
        quarantine.rows()
