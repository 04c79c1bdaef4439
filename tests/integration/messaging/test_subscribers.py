"""Consumers: offsets commit only after the handler, failures come back, duplicates apply once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from aiokafka import TopicPartition
from sqlalchemy import Engine

from registry.adapters.messaging import (
    MESSAGING_TABLES,
    BrokerSender,
    DuplicateMessageError,
    Inbox,
    Outbox,
    OutboxRelay,
    RawKafkaRecord,
    build_broker,
    subscribe_records,
)

from .support import (
    MESSAGE_ID_HEADER,
    UniqueNames,
    apply_once,
    committed_offsets,
    create_topic,
    effect_counts,
    eventually,
    read_all,
)

pytestmark = pytest.mark.integration

OUTBOX = MESSAGING_TABLES.outbox
INBOX = MESSAGING_TABLES.inbox


class SimulatedCrashError(Exception):
    pass


class RelayThatDiesBeforeMarkingSent(OutboxRelay):
    def _mark_sent(self, sent_ids: Sequence[int], failed_ids: Sequence[int]) -> None:
        raise SimulatedCrashError


async def test_a_republished_message_is_applied_once_thanks_to_the_inbox(
    engine: Engine, kafka_bootstrap: str, names: UniqueNames
) -> None:
    topic = names.topic("dedupe")
    await create_topic(kafka_bootstrap, topic)
    message_ids = [f"message-{number}" for number in range(4)]
    with engine.begin() as connection:
        for message_id in message_ids:
            Outbox(OUTBOX).add(
                connection,
                topic,
                b"transfer-1",
                message_id.encode(),
                {MESSAGE_ID_HEADER: message_id},
            )
    config = names.config("AAA", kafka_bootstrap)
    inbox = Inbox(INBOX)
    handled: list[RawKafkaRecord] = []

    async def handle(record: RawKafkaRecord) -> None:
        await asyncio.to_thread(apply_once, engine, inbox, record)
        handled.append(record)

    broker = build_broker(config)
    subscribe_records(broker, topic=topic, group_id=names.group("dedupe"), handle=handle)
    await broker.start()
    try:
        with pytest.raises(SimulatedCrashError):
            await RelayThatDiesBeforeMarkingSent(
                engine, OUTBOX, BrokerSender(broker)
            ).publish_pending()
        restarted = OutboxRelay(engine, OUTBOX, BrokerSender(broker))
        await restarted.start()
        await eventually(lambda: len(handled) == 8, what="both publications to be consumed")
        await restarted.stop()
    finally:
        await broker.stop()

    assert len(await read_all(kafka_bootstrap, topic)) == 8
    assert effect_counts(engine) == dict.fromkeys(message_ids, 1)


async def test_a_failing_handler_commits_nothing_and_the_record_comes_back(
    engine: Engine, kafka_bootstrap: str, names: UniqueNames
) -> None:
    topic = names.topic("redeliver")
    group_id = names.group("redeliver")
    await create_topic(kafka_bootstrap, topic)
    config = names.config("AAA", kafka_bootstrap)
    producer = build_broker(config)
    await producer.start()
    await producer.publish(b"fragile", topic, key=b"transfer-1", headers={MESSAGE_ID_HEADER: "m1"})
    await producer.stop()

    # First consumer: its handler fails every time (its database is down, say).
    failed_offsets: list[int] = []

    async def always_fail(record: RawKafkaRecord) -> None:
        failed_offsets.append(record.offset)
        raise RuntimeError("database unavailable")

    first = build_broker(config)
    subscriber = subscribe_records(first, topic=topic, group_id=group_id, handle=always_fail)
    await first.start()
    try:
        # FastStream derives enable_auto_commit from the ack policy; it must be off.
        assert subscriber.consumer is not None
        assert subscriber.consumer._enable_auto_commit is False
        # The same consumer gets the record again after each failure (nack seeks back).
        await eventually(lambda: len(failed_offsets) >= 2, what="redelivery to the same consumer")
        assert set(failed_offsets) == {0}
        assert await committed_offsets(kafka_bootstrap, group_id) == {}
    finally:
        await first.stop()

    # A new member of the group (the node restarted) starts from the uncommitted offset.
    inbox = Inbox(INBOX)
    applied: list[int] = []

    async def succeed(record: RawKafkaRecord) -> None:
        await asyncio.to_thread(apply_once, engine, inbox, record)
        applied.append(record.offset)

    second = build_broker(config)
    subscribe_records(second, topic=topic, group_id=group_id, handle=succeed)
    await second.start()
    try:
        await eventually(lambda: applied == [0], what="redelivery to a new consumer")

        async def committed_past_the_record() -> bool:
            offsets = await committed_offsets(kafka_bootstrap, group_id)
            return offsets == {TopicPartition(topic, 0): 1}

        await eventually(committed_past_the_record, what="the offset commit after success")
    finally:
        await second.stop()
    assert effect_counts(engine) == {"m1": 1}


async def test_a_record_without_a_value_reaches_the_handler_as_empty_bytes(
    kafka_bootstrap: str, names: UniqueNames
) -> None:
    topic = names.topic("tombstone")
    group_id = names.group("tombstone")
    await create_topic(kafka_bootstrap, topic)
    config = names.config("AAA", kafka_bootstrap)
    handled: list[RawKafkaRecord] = []

    async def handle(record: RawKafkaRecord) -> None:
        handled.append(record)

    broker = build_broker(config)
    subscribe_records(broker, topic=topic, group_id=group_id, handle=handle)
    await broker.start()
    try:
        await broker.publish(None, topic, key=b"transfer-1")
        await broker.publish(b"after", topic, key=b"transfer-1")
        # The handler (the bus) refuses it like any undecodable record, into quarantine.
        await eventually(lambda: len(handled) == 2, what="the record after the tombstone")

        async def committed_past_both() -> bool:
            offsets = await committed_offsets(kafka_bootstrap, group_id)
            return offsets == {TopicPartition(topic, 0): 2}

        await eventually(committed_past_both, what="the commit past both records")
    finally:
        await broker.stop()
    assert [record.value for record in handled] == [b"", b"after"]


def test_only_one_of_two_transactions_can_record_a_message_id(engine: Engine) -> None:
    inbox = Inbox(INBOX)
    with engine.begin() as connection:
        inbox.record(connection, "message-1", "a6.node.AAA.inbox", 0, 7)
    with pytest.raises(DuplicateMessageError), engine.begin() as connection:
        inbox.record(connection, "message-1", "a6.node.AAA.inbox", 0, 8)
    with engine.connect() as connection:
        assert inbox.seen_before(connection, "message-1")
        assert not inbox.seen_before(connection, "message-2")
