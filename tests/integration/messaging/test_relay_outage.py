"""The relay when the broker fails it: a long outage, a row it refuses, a broken producer.

The outage test has a broker of its own (``tests.own_broker``): it is stopped for
``OUTAGE_S`` while rows keep being committed, then started again on the same data
directory, as a broker comes back after maintenance or a crash. In none of these
tests is the relay or the node restarted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog.testing
from sqlalchemy import Engine, select

from registry.adapters.messaging import (
    MESSAGING_TABLES,
    Outbox,
    OutboxRelay,
    ProducerSender,
)
from registry.adapters.messaging.broker import PRODUCER_REQUEST_TIMEOUT_MS
from registry.adapters.messaging.relay import RELAY_REBUILD_AFTER_FAILED_PASSES
from tests.own_broker import OwnBroker, own_broker

from .support import UniqueNames, create_topic, eventually, read_all

pytestmark = pytest.mark.integration

OUTBOX = MESSAGING_TABLES.outbox
PRODUCER_REQUEST_TIMEOUT_S = PRODUCER_REQUEST_TIMEOUT_MS / 1000
# Past two of the producer's request timeouts, so every batch queued at the start
# of the outage outlives the producer's own timeouts (the issue saw the stall from
# about 80 s on).
OUTAGE_S = 2 * PRODUCER_REQUEST_TIMEOUT_S + 20
# After the broker is back, the relay must have published everything within this
# (the bound stated for recovery: one backoff ceiling, one producer rebuild and one
# publish timeout, with room for a loaded CI machine).
RECOVERY_TIMEOUT_S = 120.0
# A row whose topic does not exist fails after the producer's request timeout; the
# rows of other groups must be published while it does.
REFUSED_ROW_TIMEOUT_S = 2 * PRODUCER_REQUEST_TIMEOUT_S
# A busy node: about a hundred rows a second over many transfers. Produce traffic
# at the moment the broker shuts down is what lets the producer see its partitions
# leaderless (leader -1) and then expire batches that already took sequence
# numbers; a quiet relay never hits it. With the old relay this stream stalled the
# relay for good ("outbox row N was not acknowledged; 0 of 200 rows were", caused
# by OutOfOrderSequenceNumber) in both runs tried.
STREAM_INTERVAL_S = 0.01
# The publish timeout of a relay whose producer is broken, so its passes fail fast.
BROKEN_PASS_TIMEOUT_S = 2.0
TRANSFER_KEYS = [f"transfer-{number}".encode() for number in range(60)]


@pytest.fixture
def outage_broker(tmp_path: Path) -> Iterator[OwnBroker]:
    with own_broker(tmp_path / "kafka") as broker:
        yield broker


def _unsent_ids(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        found = connection.execute(
            select(OUTBOX.c.id).where(OUTBOX.c.sent_at.is_(None)).order_by(OUTBOX.c.id)
        )
        return [int(row_id) for row_id in found.scalars()]


def _add(engine: Engine, topic: str, key: bytes, value: str) -> int:
    with engine.begin() as connection:
        return Outbox(OUTBOX).add(connection, topic, key, value.encode(), {})


def _first_occurrences(values: list[bytes]) -> list[bytes]:
    """At least once means repeats are allowed; order is judged on first occurrences."""
    first: list[bytes] = []
    for value in values:
        if value not in first:
            first.append(value)
    return first


@pytest.mark.slow
async def test_relay_publishes_everything_after_a_long_outage_without_a_restart(
    engine: Engine, outage_broker: OwnBroker, names: UniqueNames
) -> None:
    topics = [names.topic("node.AAA.inbox"), names.topic("decisions")]
    for topic in topics:
        await create_topic(outage_broker.bootstrap, topic, partitions=3)
    sender = ProducerSender(names.config("AAA", outage_broker.bootstrap))
    await sender.start()
    relay = OutboxRelay(engine, OUTBOX, sender)
    await relay.start()
    written: dict[tuple[str, bytes], list[bytes]] = {}

    stop_streaming = asyncio.Event()

    async def stream() -> None:
        # A steady stream of rows over both topics and several transfers. It stops
        # between rows, never by cancellation: a cancelled await of the insert's
        # thread would leave a committed row out of ``written``.
        number = 0
        while not stop_streaming.is_set():
            topic = topics[number % len(topics)]
            key = TRANSFER_KEYS[number % len(TRANSFER_KEYS)]
            await asyncio.to_thread(_add, engine, topic, key, f"m{number:05d}")
            written.setdefault((topic, key), []).append(f"m{number:05d}".encode())
            relay.notify()
            number += 1
            await asyncio.sleep(STREAM_INTERVAL_S)

    streaming = asyncio.create_task(stream())
    try:
        await eventually(lambda: len(written) >= len(TRANSFER_KEYS), what="rows before")
        await asyncio.to_thread(outage_broker.stop)
        await asyncio.sleep(OUTAGE_S)
        await asyncio.to_thread(outage_broker.start)
        # The stream goes on while the relay recovers.
        await asyncio.sleep(PRODUCER_REQUEST_TIMEOUT_S)
        stop_streaming.set()
        await streaming
        await eventually(
            lambda: not _unsent_ids(engine),
            timeout_s=RECOVERY_TIMEOUT_S,
            what="every row committed before, during and after the outage to be published",
        )
    finally:
        streaming.cancel()
        await relay.stop()
        await sender.stop()

    for topic in topics:
        records = await read_all(outage_broker.bootstrap, topic)
        for key in TRANSFER_KEYS:
            published = [record.value for record in records if record.key == key]
            # Nothing lost, and per transfer in commit order.
            assert _first_occurrences(published) == written.get((topic, key), [])


async def test_a_row_the_broker_keeps_refusing_holds_back_only_its_own_transfer_and_topic(
    engine: Engine, kafka_bootstrap: str, names: UniqueNames
) -> None:
    decisions = names.topic("decisions")
    inbox = names.topic("node.BBB.inbox")
    await create_topic(kafka_bootstrap, decisions)
    # The inbox topic does not exist yet: the broker refuses its rows until it does.
    refused = _add(engine, inbox, b"transfer-1", "vote")
    held_back = _add(engine, inbox, b"transfer-1", "ack")
    # Behind it: the decisions of the same and of another transfer, on another topic.
    _add(engine, decisions, b"transfer-1", "decision-1")
    _add(engine, decisions, b"transfer-2", "decision-2")
    sender = ProducerSender(names.config("AAA", kafka_bootstrap))
    await sender.start()
    relay = OutboxRelay(engine, OUTBOX, sender, backoff_max_s=1.0)
    await relay.start()
    try:
        with structlog.testing.capture_logs() as logged:
            await eventually(
                lambda: set(_unsent_ids(engine)) == {refused, held_back},
                timeout_s=REFUSED_ROW_TIMEOUT_S,
                what="the decisions behind the refused row to be published",
            )
            await eventually(lambda: relay.failed_pass_count >= 1, what="a failed pass")
        # The failed pass names the producer's own error, not only the relay's summary.
        failed = [entry for entry in logged if entry["event"] == "outbox relay pass failed"]
        assert failed
        assert failed[0]["cause_type"] == "UnknownTopicOrPartitionError", failed[0]
        # Once the broker takes the row, it and the row held behind it follow.
        await create_topic(kafka_bootstrap, inbox)
        await eventually(
            lambda: not _unsent_ids(engine),
            timeout_s=REFUSED_ROW_TIMEOUT_S * 2,
            what="the refused row to be published once its topic exists",
        )
    finally:
        await relay.stop()
        await sender.stop()
    # The row held back behind the refused one never overtook it.
    assert _first_occurrences([r.value for r in await read_all(kafka_bootstrap, inbox)]) == [
        b"vote",
        b"ack",
    ]
    assert sorted(r.value for r in await read_all(kafka_bootstrap, decisions)) == [
        b"decision-1",
        b"decision-2",
    ]


async def test_relay_rebuilds_a_producer_that_keeps_failing_and_publishes_without_a_restart(
    engine: Engine, kafka_bootstrap: str, names: UniqueNames
) -> None:
    topic = names.topic("rebuild")
    await create_topic(kafka_bootstrap, topic)
    sender = ProducerSender(names.config("AAA", kafka_bootstrap))
    await sender.start()
    # The producer dies under the sender (as one left broken by an outage would
    # refuse every record); only a fresh producer can send again.
    broken = sender._producer
    assert broken is not None
    await broken.stop()
    for number in range(3):
        _add(engine, topic, b"transfer-1", f"m{number}")
    # A closed producer can hang a send (it waits for metadata that never comes):
    # the relay's publish timeout bounds each failing pass.
    relay = OutboxRelay(
        engine,
        OUTBOX,
        sender,
        publish_timeout_s=BROKEN_PASS_TIMEOUT_S,
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
    )
    await relay.start()
    try:
        await eventually(lambda: not _unsent_ids(engine), what="a rebuilt producer to publish")
    finally:
        await relay.stop()
        await sender.stop()
    assert relay.rebuild_count == 1
    assert relay.failed_pass_count == RELAY_REBUILD_AFTER_FAILED_PASSES
    assert [r.value for r in await read_all(kafka_bootstrap, topic)] == [b"m0", b"m1", b"m2"]
