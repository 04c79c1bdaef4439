"""The lifecycle of one node's Kafka edge: topics, broker, relay, in that order.

``start`` creates the topics the node needs, then starts the broker (its
producer and both consumer groups, which resume from their committed
offsets), then the relay's own producer and the relay (whose first pass
republishes every unsent outbox row). ``stop`` goes the other way: the
subscribers stop first so that no handler writes new outbox rows, the relay
drains what is committed, and the producers close last.

A broker that is not there yet (a node started before Kafka, or during a
broker restart) is not a reason to stay down: ``start_until_connected``
retries ``start`` with a capped exponential backoff, and ``connected`` says
whether it has succeeded, for the health check.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker
from faststream.kafka.subscriber.usecase import DefaultSubscriber
from sqlalchemy import Engine

from .broker import (
    ProducerSender,
    RecordHandler,
    build_node_broker,
    check_manual_commit,
    subscribe_records,
)
from .config import MessagingConfig
from .errors import BrokerUnavailableError, EdgeNotStartedError, MessagingError, TopicSetupError
from .inbox import Inbox
from .outbox import Outbox
from .relay import OutboxRelay
from .tables import MessagingTables
from .topics import prepare_node_topics

log = structlog.get_logger(__name__)

# Retrying a start against a broker that does not answer: the first retry soon
# (a broker restarting next door is back in seconds), then doubling up to a cap
# that keeps a node from noticing a returned broker more than this late. The
# attempts themselves are not counted out: a node whose broker is down has
# nothing better to do than keep trying, and it says so in /v1/health meanwhile.
EDGE_START_BACKOFF_INITIAL_S = 0.5
EDGE_START_BACKOFF_MAX_S = 15.0
EDGE_START_BACKOFF_FACTOR = 2.0
# One attempt: topic setup (ADMIN_REQUEST_TIMEOUT_MS + TOPIC_CREATE_TIMEOUT_MS) and
# the broker's start; past this the attempt is abandoned and retried.
EDGE_START_ATTEMPT_TIMEOUT_S = 90.0


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


class _FromTheStart(ConsumerRebalanceListener):  # type: ignore[misc]
    """On assignment, seek to the first record: the directory topic is read whole at every start.

    It is small (compacted, one key) and the node's own copy decides what it adopts,
    so reading it again costs little and a group's committed offset never hides a version.
    """

    def __init__(self, on_end: Callable[[int], None] | None) -> None:
        self.subscriber: DefaultSubscriber | None = None
        self._on_end = on_end

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        consumer = None if self.subscriber is None else self.subscriber.consumer
        if consumer is None or not assigned:
            return
        for partition in assigned:
            await consumer.seek_to_beginning(partition)
        await self.report_end()

    async def report_end(self) -> None:
        """Tell ``on_end`` the end offset of the (one-partition) directory topic."""
        consumer = None if self.subscriber is None else self.subscriber.consumer
        if consumer is None or self._on_end is None:
            return
        assigned: list[TopicPartition] = sorted(consumer.assignment())
        if not assigned:
            return
        ends = await consumer.end_offsets(assigned)
        self._on_end(max(int(end) for end in ends.values()))


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
        handle_snapshot: RecordHandler | None = None,
        handle_directory: RecordHandler | None = None,
        on_directory_end: Callable[[int], None] | None = None,
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
        # Reconciliation's reader of the holdings snapshots (a fifth group).
        if handle_snapshot is not None:
            self._subscribers = (
                *self._subscribers,
                subscribe_records(
                    broker,
                    topic=config.snapshot_topic,
                    group_id=config.snapshot_group_id,
                    handle=handle_snapshot,
                ),
            )
        # The federation directory's published versions (when an authority is configured).
        self._directory_subscribers: tuple[DefaultSubscriber, ...] = ()
        self._directory_listener: _FromTheStart | None = None
        if handle_directory is not None and config.directory_topic is not None:
            from_the_start = _FromTheStart(on_directory_end)
            self._directory_listener = from_the_start
            from_the_start.subscriber = subscribe_records(
                broker,
                topic=config.directory_topic,
                group_id=config.directory_group_id,
                handle=handle_directory,
                listener=from_the_start,
            )
            self._directory_subscribers = (from_the_start.subscriber,)
        # The relay publishes through a producer of its own, which it can rebuild
        # when a broker outage leaves it broken (see ProducerSender).
        self.sender = ProducerSender(config)
        self.relay = OutboxRelay(engine, tables.outbox, self.sender)
        self._started = False
        # Why the last start failed, while the edge is not connected (for logs and health).
        self.start_error: str | None = None

    @property
    def _all_subscribers(self) -> tuple[DefaultSubscriber, ...]:
        return (*self._subscribers, *self._index_subscribers, *self._directory_subscribers)

    @property
    def connected(self) -> bool:
        """Whether ``start`` has succeeded (and ``stop`` has not been called since)."""
        return self._started

    async def start(self) -> None:
        await prepare_node_topics(self.config, client_id=f"a6-node-{self.config.party}-admin")
        try:
            await self.broker.start()
        except KafkaError as error:
            # A half-started broker (producer up, a consumer not) is closed before a retry.
            await self.broker.stop()
            raise BrokerUnavailableError(
                f"broker at {self.config.bootstrap_servers} did not start: {error!r}"
            ) from error
        try:
            for subscriber in self._all_subscribers:
                check_manual_commit(subscriber)
        except MessagingError:
            await self.broker.stop()
            raise
        try:
            await self.sender.start()
        except Exception:
            await self.broker.stop()
            raise
        await self.relay.start()
        self._started = True
        self.start_error = None

    async def report_directory_end(self) -> None:
        """Look up the directory topic's end offset now and report it (``on_directory_end``).

        Asked when a record fails verification for an unknown member or key: a member
        signs with a new key, or a joiner sends, only after the version announcing it
        was published, so the end seen then covers that version.
        """
        if self._directory_listener is None or not self._started:
            return
        try:
            await self._directory_listener.report_end()
        except KafkaError as error:
            # The node keeps the end it last saw; the record is judged against that.
            log.warning("messaging: directory topic end unknown", error=repr(error))

    async def start_until_connected(self) -> None:
        """``start`` until it succeeds, backing off between attempts; see the module docstring.

        Only an unreachable or unready broker is retried; any other error (a consumer
        that would auto-commit) is a defect that no retry fixes, and is raised.
        Cancelling this (the node stopping first) leaves nothing half-started.
        """
        delay_s = EDGE_START_BACKOFF_INITIAL_S
        attempt = 0
        while True:
            attempt += 1
            try:
                await asyncio.wait_for(self.start(), EDGE_START_ATTEMPT_TIMEOUT_S)
            except (TopicSetupError, BrokerUnavailableError, TimeoutError) as error:
                self.start_error = repr(error)
            except BaseException:
                await self.broker.stop()
                raise
            else:
                if attempt > 1:
                    log.info("messaging: connected to the broker", attempts=attempt)
                return
            # wait_for may have cut a start short inside broker.start: close what it opened.
            await self.broker.stop()
            log.warning(
                "messaging: not connected to the broker; retrying",
                bootstrap_servers=self.config.bootstrap_servers,
                attempt=attempt,
                retry_in_s=delay_s,
                error=self.start_error,
            )
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * EDGE_START_BACKOFF_FACTOR, EDGE_START_BACKOFF_MAX_S)

    async def stop(self) -> None:
        self._started = False
        try:
            for subscriber in self._all_subscribers:
                await subscriber.stop()
            await self.relay.stop(drain=True)
        finally:
            # Closing the producers last lets the drain above use them; closing
            # them whatever happened keeps a failed drain from leaking connections.
            try:
                await self.sender.stop()
            finally:
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
