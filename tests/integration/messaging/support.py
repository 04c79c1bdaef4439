"""Helpers for the messaging tests: unique names, topic reading, an effect table, waiting."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, func, insert, select

from registry.adapters.database import make_engine
from registry.adapters.messaging import (
    MESSAGING_TABLES,
    Inbox,
    MessagingConfig,
    RawKafkaRecord,
    TopicSpec,
    ensure_topics,
)

# Generous for a cold JVM broker on a 2-core CI machine; tests finish far sooner.
EVENTUALLY_TIMEOUT_S = 30.0
EVENTUALLY_INTERVAL_S = 0.05
READ_POLL_TIMEOUT_MS = 200
MESSAGE_ID_HEADER = "message_id"

# What a handler "does" in these tests: one row per application of a message,
# so that a count above one is a message applied twice.
EFFECTS_METADATA = MetaData()
EFFECTS = Table(
    "test_effects",
    EFFECTS_METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(128), nullable=False),
)


def messaging_engine(database_url: str) -> Engine:
    """The ledger's own engine settings, with only the messaging and effect tables created."""
    engine = make_engine(database_url)
    MESSAGING_TABLES.outbox.create(engine)
    MESSAGING_TABLES.inbox.create(engine)
    EFFECTS_METADATA.create_all(engine)
    return engine


@dataclass(frozen=True)
class UniqueNames:
    """Topic and group names no other test (or earlier run against the same broker) uses."""

    prefix: str

    def topic(self, name: str) -> str:
        return f"{self.prefix}.{name}"

    def group(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def config(
        self, party: str, bootstrap: str, *, decision_partitions: int = 3
    ) -> MessagingConfig:
        return MessagingConfig(
            party=party,
            bootstrap_servers=bootstrap,
            inbox_topic=self.topic(f"node.{party}.inbox"),
            inbox_group_id=self.group(f"node-{party}"),
            decision_topic=self.topic("decisions"),
            decision_group_id=self.group(f"node-{party}-decisions"),
            decision_topic_partitions=decision_partitions,
            snapshot_topic=self.topic("snapshots"),
        )


async def create_topic(bootstrap: str, topic: str, *, partitions: int = 1) -> None:
    await ensure_topics(
        bootstrap,
        [TopicSpec(name=topic, partitions=partitions, replication_factor=1, configs={})],
        client_id="messaging-tests",
    )


async def read_all(bootstrap: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every committed record of ``topic``, up to its end offsets at the time of the call."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, partition)
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [
                TopicPartition(topic, partition)
                for partition in sorted(consumer.partitions_for_topic(topic) or ())
            ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end_offsets = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord[bytes, bytes]] = []
        async with asyncio.timeout(EVENTUALLY_TIMEOUT_S):
            while [tp for tp, end in end_offsets.items() if await consumer.position(tp) < end]:
                fetched = await consumer.getmany(timeout_ms=READ_POLL_TIMEOUT_MS)
                for batch in fetched.values():
                    records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def committed_offsets(bootstrap: str, group_id: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="messaging-tests")
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group_id)
        return {partition: meta.offset for partition, meta in offsets.items() if meta.offset >= 0}
    finally:
        await admin.close()


async def eventually(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool],
    *,
    timeout_s: float = EVENTUALLY_TIMEOUT_S,
    what: str = "condition",
) -> None:
    """Wait until ``check`` holds, or fail naming ``what``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        outcome: Any = check()
        if asyncio.iscoroutine(outcome):
            outcome = await outcome
        if outcome:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(EVENTUALLY_INTERVAL_S)


def apply_once(engine: Engine, inbox: Inbox, record: RawKafkaRecord) -> bool:
    """A handler's transaction: drop a duplicate, else apply the effect and record the id.

    Returns whether the effect was applied.
    """
    raw_id = record.header(MESSAGE_ID_HEADER)
    if raw_id is None:
        raise ValueError(f"record at offset {record.offset} has no {MESSAGE_ID_HEADER} header")
    message_id = raw_id.decode()
    with engine.begin() as connection:
        if inbox.seen_before(connection, message_id):
            return False
        connection.execute(insert(EFFECTS).values(message_id=message_id))
        inbox.record(connection, message_id, record.topic, record.partition, record.offset)
    return True


def effect_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        found = connection.execute(
            select(EFFECTS.c.message_id, func.count()).group_by(EFFECTS.c.message_id)
        ).all()
    return {str(message_id): int(count) for message_id, count in found}
