"""The transactional outbox and its relay against a real database and a real broker."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from faststream.kafka import KafkaBroker
from sqlalchemy import Engine, select

from registry.adapters.messaging import (
    MESSAGING_TABLES,
    BrokerSender,
    InvalidOutboxMessageError,
    Outbox,
    OutboxRelay,
    build_broker,
)

from .support import UniqueNames, create_topic, eventually, read_all

pytestmark = pytest.mark.integration

OUTBOX = MESSAGING_TABLES.outbox


class SimulatedCrashError(Exception):
    """The process dies after the broker acknowledged and before the rows are marked sent."""


class RelayThatDiesBeforeMarkingSent(OutboxRelay):
    def _mark_sent(self, sent_ids: Sequence[int], failed_ids: Sequence[int]) -> None:
        raise SimulatedCrashError


async def _started_broker(names: UniqueNames, bootstrap: str) -> KafkaBroker:
    broker = build_broker(names.config("AAA", bootstrap))
    await broker.start()
    return broker


def _unsent_ids(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        found = connection.execute(
            select(OUTBOX.c.id).where(OUTBOX.c.sent_at.is_(None)).order_by(OUTBOX.c.id)
        )
        return [int(row_id) for row_id in found.scalars()]


class _RolledBackError(Exception):
    pass


async def test_rows_of_a_rolled_back_transaction_are_never_published(
    engine: Engine, kafka_bootstrap: str, names: UniqueNames
) -> None:
    topic = names.topic("rollback")
    await create_topic(kafka_bootstrap, topic)
    outbox = Outbox(OUTBOX)

    def write_then_fail() -> None:
        with engine.begin() as connection:
            outbox.add(connection, topic, b"transfer-1", b"rolled back", {})
            raise _RolledBackError

    with pytest.raises(_RolledBackError):
        write_then_fail()
    with engine.begin() as connection:
        outbox.add(connection, topic, b"transfer-2", b"committed", {})
    broker = await _started_broker(names, kafka_bootstrap)
    relay = OutboxRelay(engine, OUTBOX, BrokerSender(broker))
    try:
        assert await relay.publish_pending() == 1
    finally:
        await broker.stop()

    assert [record.value for record in await read_all(kafka_bootstrap, topic)] == [b"committed"]
    assert _unsent_ids(engine) == []


async def test_committed_rows_are_published_in_id_order_and_marked_sent(
    engine: Engine, kafka_bootstrap: str, names: UniqueNames
) -> None:
    topic = names.topic("order")
    await create_topic(kafka_bootstrap, topic, partitions=3)
    outbox = Outbox(OUTBOX)
    keys = [b"transfer-a", b"transfer-b", b"transfer-c"]
    # Several transactions of several rows, interleaving keys, more rows than one batch.
    for transaction_number in range(5):
        with engine.begin() as connection:
            for row_number in range(30):
                value = f"{transaction_number:02d}-{row_number:02d}".encode()
                outbox.add(connection, topic, keys[row_number % 3], value, {"n": value.decode()})
    broker = await _started_broker(names, kafka_bootstrap)
    relay = OutboxRelay(engine, OUTBOX, BrokerSender(broker), batch_size_max=40)
    await relay.start()
    try:
        await eventually(lambda: not _unsent_ids(engine), what="the outbox to drain")
    finally:
        await relay.stop()
        await broker.stop()

    records = await read_all(kafka_bootstrap, topic)
    assert len(records) == 150
    for key in keys:
        # Per key (one partition, one transfer) the order is the outbox's id order.
        values = [record.value for record in records if record.key == key]
        assert values == sorted(values)
        assert len(values) == 50
    with engine.connect() as connection:
        attempts = connection.execute(select(OUTBOX.c.attempt_count)).scalars().all()
    assert set(attempts) == {1}


async def test_relay_wakes_on_notify_long_before_its_poll_interval(
    engine: Engine, kafka_bootstrap: str, names: UniqueNames
) -> None:
    topic = names.topic("notify")
    await create_topic(kafka_bootstrap, topic)
    broker = await _started_broker(names, kafka_bootstrap)
    relay = OutboxRelay(engine, OUTBOX, BrokerSender(broker), poll_interval_s=3600.0)
    await relay.start()
    try:
        await eventually(lambda: relay.pass_count >= 1, what="the first (empty) pass")
        with engine.begin() as connection:
            Outbox(OUTBOX).add(connection, topic, b"transfer-1", b"poked", {})
        relay.notify()
        await eventually(lambda: not _unsent_ids(engine), timeout_s=10.0, what="the poke")
    finally:
        await relay.stop()
        await broker.stop()


async def test_a_relay_that_dies_before_marking_sent_republishes_on_restart(
    engine: Engine, kafka_bootstrap: str, names: UniqueNames
) -> None:
    topic = names.topic("crash")
    await create_topic(kafka_bootstrap, topic)
    with engine.begin() as connection:
        for number in range(3):
            Outbox(OUTBOX).add(connection, topic, b"transfer-1", f"m{number}".encode(), {})
    broker = await _started_broker(names, kafka_bootstrap)
    try:
        dying = RelayThatDiesBeforeMarkingSent(engine, OUTBOX, BrokerSender(broker))
        with pytest.raises(SimulatedCrashError):
            await dying.publish_pending()
        assert len(_unsent_ids(engine)) == 3

        restarted = OutboxRelay(engine, OUTBOX, BrokerSender(broker))
        await restarted.start()
        await eventually(lambda: not _unsent_ids(engine), what="recovery to republish")
        await restarted.stop()
    finally:
        await broker.stop()

    values = [record.value for record in await read_all(kafka_bootstrap, topic)]
    # At least once: the first publication reached the broker, the restart published again.
    assert values == [b"m0", b"m1", b"m2", b"m0", b"m1", b"m2"]


class SenderThatFailsFirst:
    """A real sender whose first ``failure_count`` sends fail, as during a broker outage."""

    def __init__(self, sender: BrokerSender, failure_count: int) -> None:
        self._sender = sender
        self.failures_left = failure_count

    async def send(
        self, topic: str, key: bytes | None, value: bytes, headers: Mapping[str, str]
    ) -> asyncio.Future[Any]:
        if self.failures_left > 0:
            self.failures_left -= 1
            raise KafkaConnectionError("simulated outage")
        return await self._sender.send(topic, key, value, headers)


async def test_relay_retries_a_failed_send_with_backoff_and_keeps_order(
    engine: Engine, kafka_bootstrap: str, names: UniqueNames
) -> None:
    topic = names.topic("outage")
    await create_topic(kafka_bootstrap, topic)
    with engine.begin() as connection:
        for number in range(3):
            Outbox(OUTBOX).add(connection, topic, b"transfer-1", f"m{number}".encode(), {})
    broker = await _started_broker(names, kafka_bootstrap)
    sender = SenderThatFailsFirst(BrokerSender(broker), failure_count=3)
    relay = OutboxRelay(engine, OUTBOX, sender, backoff_initial_s=0.05, backoff_max_s=0.2)
    await relay.start()
    try:
        await eventually(lambda: not _unsent_ids(engine), what="the retries to succeed")
    finally:
        await relay.stop()
        await broker.stop()
    assert relay.failed_pass_count == 3
    assert [r.value for r in await read_all(kafka_bootstrap, topic)] == [b"m0", b"m1", b"m2"]
    with engine.connect() as connection:
        attempts = connection.execute(select(OUTBOX.c.attempt_count).order_by(OUTBOX.c.id))
        # The first row carried the three failed attempts and the good one.
        assert list(attempts.scalars()) == [4, 1, 1]


@pytest.mark.parametrize(
    ("topic", "value"),
    [
        ("bad topic name", b"x"),
        ("a6.ok", b"x" * (1024 * 1024)),
    ],
)
def test_outbox_refuses_what_kafka_would_refuse_later(
    engine: Engine, topic: str, value: bytes
) -> None:
    with pytest.raises(InvalidOutboxMessageError), engine.begin() as connection:
        Outbox(OUTBOX).add(connection, topic, None, value, {})
    assert _unsent_ids(engine) == []


async def test_stop_drains_rows_committed_since_the_last_pass(
    engine: Engine, kafka_bootstrap: str, names: UniqueNames
) -> None:
    topic = names.topic("drain")
    await create_topic(kafka_bootstrap, topic)
    broker = await _started_broker(names, kafka_bootstrap)
    relay = OutboxRelay(engine, OUTBOX, BrokerSender(broker), poll_interval_s=3600.0)
    await relay.start()
    try:
        await eventually(lambda: relay.pass_count >= 1, what="the first (empty) pass")
        with engine.begin() as connection:
            Outbox(OUTBOX).add(connection, topic, b"transfer-1", b"late", {})
        # Nobody pokes the relay: only the drain in stop() can publish the row.
        await relay.stop(drain=True)
    finally:
        await broker.stop()
    assert _unsent_ids(engine) == []
    assert [record.value for record in await read_all(kafka_bootstrap, topic)] == [b"late"]
