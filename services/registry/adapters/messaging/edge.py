"""The lifecycle of one node's Kafka edge: topics, broker, relay, in that order.

``start`` creates the topics the node needs, then starts the broker (its
producer and both consumer groups, which resume from their committed
offsets), then the relay (whose first pass republishes every unsent outbox
row). ``stop`` goes the other way: the subscribers stop first so that no
handler writes new outbox rows, the relay drains what is committed, and the
broker closes its producer last.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiokafka import ConsumerRebalanceListener, TopicPartition
from faststream.kafka import KafkaBroker
from faststream.kafka.subscriber.usecase import DefaultSubscriber
from sqlalchemy import Engine

from .broker import (
    BrokerSender,
    RecordHandler,
    build_node_broker,
    check_manual_commit,
    subscribe_records,
)
from .config import MessagingConfig
from .errors import EdgeNotStartedError, MessagingError
from .inbox import Inbox
from .outbox import Outbox
from .relay import OutboxRelay
from .tables import MessagingTables
from .topics import ensure_topics, node_topic_specs


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """How far one consumer group is behind on one partition, in records."""

    topic: str
    partition: int
    end_offset: int
    committed_offset: int | None

    @property
    def lag(self) -> int:
        # A group that never committed is behind by everything it has not read.
        return max(self.end_offset - (self.committed_offset or 0), 0)


@dataclass(frozen=True, slots=True)
class UnitIndexHandlers:
    """The unit index's two record handlers (``registry.entrypoints.bus.UnitIndexBus``)."""

    handle_unit_record: RecordHandler
    handle_decision: RecordHandler
    # The next offset the index reads per (topic, partition), from its own tables.
    stored_offsets: Callable[[], Awaitable[dict[tuple[str, int], int]]]


class _ResumeFromOwnOffsets(ConsumerRebalanceListener):  # type: ignore[misc]
    """On assignment, seek to the offsets the unit index committed with its rows.

    The index's database, not the consumer group, says what it has read: a node
    whose database is new (or restored from a backup) must read the logs again
    from where its rows stop, even if a group of the same name committed further.
    """

    def __init__(self, stored_offsets: Callable[[], Awaitable[dict[tuple[str, int], int]]]):
        self._stored_offsets = stored_offsets
        self.subscriber: DefaultSubscriber | None = None

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        consumer = None if self.subscriber is None else self.subscriber.consumer
        if consumer is None or not assigned:
            return
        stored = await self._stored_offsets()
        for partition in assigned:
            offset = stored.get((partition.topic, partition.partition))
            if offset is None:
                await consumer.seek_to_beginning(partition)
            else:
                consumer.seek(partition, offset)


class MessagingEdge:
    """Owns the node's broker, subscribers and relay; see the module docstring."""

    def __init__(
        self,
        config: MessagingConfig,
        engine: Engine,
        tables: MessagingTables,
        *,
        handle_inbox: RecordHandler,
        handle_decision: RecordHandler,
        unit_index: UnitIndexHandlers | None = None,
    ) -> None:
        self.config = config
        self.outbox = Outbox(tables.outbox)
        self.inbox = Inbox(tables.inbox)
        broker, inbox_subscriber, decision_subscriber = build_node_broker(
            config, handle_inbox=handle_inbox, handle_decision=handle_decision
        )
        self.broker: KafkaBroker = broker
        self._subscribers: tuple[DefaultSubscriber, ...] = (inbox_subscriber, decision_subscriber)
        # The federation unit index's subscribers (a third and fourth group): their
        # progress is the index's own, kept in its tables (``unit_index_end_offsets``).
        self._index_subscribers: tuple[DefaultSubscriber, ...] = ()
        if unit_index is not None:
            unit_group, decision_group = config.unit_index_groups
            subscribers = []
            for topic, group, handle in (
                (config.unit_log_topic, unit_group, unit_index.handle_unit_record),
                (config.decision_topic, decision_group, unit_index.handle_decision),
            ):
                listener = _ResumeFromOwnOffsets(unit_index.stored_offsets)
                listener.subscriber = subscribe_records(
                    broker, topic=topic, group_id=group, handle=handle, listener=listener
                )
                subscribers.append(listener.subscriber)
            self._index_subscribers = tuple(subscribers)
        self.relay = OutboxRelay(engine, tables.outbox, BrokerSender(broker))
        self._started = False

    async def start(self) -> None:
        await ensure_topics(
            self.config.bootstrap_servers,
            node_topic_specs(self.config),
            client_id=f"a6-node-{self.config.party}-admin",
        )
        await self.broker.start()
        try:
            for subscriber in (*self._subscribers, *self._index_subscribers):
                check_manual_commit(subscriber)
        except MessagingError:
            await self.broker.stop()
            raise
        await self.relay.start()
        self._started = True

    async def stop(self) -> None:
        self._started = False
        try:
            for subscriber in (*self._subscribers, *self._index_subscribers):
                await subscriber.stop()
            await self.relay.stop(drain=True)
        finally:
            # Closing the producer last lets the drain above use it; closing it
            # whatever happened keeps a failed drain from leaking connections.
            await self.broker.stop()

    def notify(self) -> None:
        """Poke the relay after a commit that wrote outbox rows."""
        self.relay.notify()

    async def consumer_lag(self) -> list[PartitionLag]:
        """Per assigned partition of both groups: end offset minus committed offset."""
        if not self._started:
            raise EdgeNotStartedError("consumer lag needs a started edge")
        lags: list[PartitionLag] = []
        for subscriber in self._subscribers:
            consumer = subscriber.consumer
            if consumer is None:
                continue
            assigned: list[TopicPartition] = sorted(consumer.assignment())
            if not assigned:
                continue
            end_offsets = await consumer.end_offsets(assigned)
            for partition in assigned:
                lags.append(
                    PartitionLag(
                        topic=partition.topic,
                        partition=partition.partition,
                        end_offset=int(end_offsets[partition]),
                        committed_offset=await consumer.committed(partition),
                    )
                )
        return lags

    async def unit_index_end_offsets(self) -> dict[tuple[str, int], int] | None:
        """The end offset of every partition the unit index reads, None until all are assigned.

        What the index must have read (its own offsets, in its tables) to be current.
        """
        if not self._started or not self._index_subscribers:
            return None
        ends: dict[tuple[str, int], int] = {}
        for subscriber in self._index_subscribers:
            consumer = subscriber.consumer
            if consumer is None:
                return None
            assigned: list[TopicPartition] = sorted(consumer.assignment())
            if not assigned:
                return None
            end_offsets = await consumer.end_offsets(assigned)
            for partition in assigned:
                ends[(partition.topic, partition.partition)] = int(end_offsets[partition])
        return ends
