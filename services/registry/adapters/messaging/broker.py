"""The FastStream broker of one node and its two thin subscribers.

Delivery contract of every subscriber built here (PROTOCOL.md, "Local
durability: outbox and inbox"): the consumer group's offset for a record is
committed only after the handler returned, that is after the handler's own
database transaction committed; a handler that raises leaves the offset
where it was and the record comes back. FastStream 0.7 gives exactly that
with ``AckPolicy.NACK_ON_ERROR`` on Kafka:

- any policy but ``ACK_FIRST`` turns aiokafka's ``enable_auto_commit`` off
  (``KafkaSubscriberConfig.__post_init__``; it cannot be passed directly);
- on success the acknowledgement middleware calls ``consumer.commit()``,
  which commits the consumer's position, the record after this one, since
  records are handled one at a time in order;
- on an exception ``nack`` seeks the partition back to the failed record, so
  the same consumer reads it again and nothing later in that partition is
  committed past it. ``AckPolicy.ACK`` would commit on error too (a loss),
  and the default, ``ACK_FIRST``, auto-commits before handling (at most once).

If the node dies before the commit, the group hands the partition to the
next consumer from the last committed offset: the record is redelivered and
the inbox table drops it if its effect had already committed.

The handler gets the record's bytes untouched. FastStream would otherwise
decode every body itself before the handler runs (as JSON when the
content-type header says so, or when there is none), and its decoder lets
some failures escape (garbage under a JSON content-type, an integer of
thousands of digits, deep nesting), which the nack above turns into a
redelivery loop that never ends. So the subscriber's decoder hands the bytes
on, and its parser tolerates header values that are not UTF-8; what the bytes
mean, and whether they are refused, is the handler's business
(``registry.entrypoints.bus``). A handler that raises is therefore one that
hopes a retry helps (the node's own database is down): the record is
redelivered after an exponential backoff, so a long outage does not spin.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.subscriber.usecase import DefaultSubscriber
from faststream.message import StreamMessage
from faststream.middlewares import AckPolicy
from faststream.security import BaseSecurity

from .config import MessagingConfig
from .errors import MessagingError
from .security import client_security_options

_log = structlog.get_logger(__name__)

# Producer. acks="all" with idempotence means a record is acknowledged only
# once every in-sync replica has it, and a retried send cannot duplicate or
# reorder records within a partition.
PRODUCER_ACKS = "all"
PRODUCER_LINGER_MS = 5
PRODUCER_REQUEST_TIMEOUT_MS = 30_000
PRODUCER_RETRY_BACKOFF_MS = 100
# Kafka's default broker-side message.max.bytes is about 1 MiB; the outbox
# refuses rows above MESSAGE_SIZE_MAX_BYTES, safely below this.
PRODUCER_MAX_REQUEST_SIZE_BYTES = 1024 * 1024
# How long stop() waits for a handler in progress before closing the broker.
BROKER_GRACEFUL_TIMEOUT_S = 15.0
# Closing a producer flushes what it holds; on a broker that is gone that flush
# never ends, so a producer being replaced or stopped gets this long, then is dropped.
PRODUCER_CLOSE_TIMEOUT_S = 5.0

# Consumers. Records are handled one at a time (getone), so what bounds the
# records held in memory is the fetch size; max_poll_records bounds each poll
# of aiokafka's fetcher as well, and `max_records` applies to batch subscribers
# only, which these are not (one record, one transaction, one commit).
CONSUMER_MAX_POLL_RECORDS = 100
CONSUMER_FETCH_MAX_BYTES = 8 * 1024 * 1024
CONSUMER_MAX_PARTITION_FETCH_BYTES = 1024 * 1024
CONSUMER_SESSION_TIMEOUT_MS = 10_000
CONSUMER_HEARTBEAT_INTERVAL_MS = 3_000
# Also the rebalance timeout: how long a rebalance waits for members to rejoin.
# Records are handled one at a time in one short transaction, so a minute is ample.
CONSUMER_MAX_POLL_INTERVAL_MS = 60_000
# A handler that fails is retried by redelivery after a pause that doubles with
# each consecutive failure in the same partition, from the first to the maximum,
# so a database outage neither spins the CPU nor floods the log. The maximum
# stays well inside CONSUMER_MAX_POLL_INTERVAL_MS, since the pause holds the poll.
REDELIVERY_BACKOFF_FIRST_S = 0.5
REDELIVERY_BACKOFF_MAX_S = 20.0


def redelivery_backoff_s(consecutive_failures: int) -> float:
    """The pause before redelivering a record after its ``consecutive_failures``-th failure."""
    if consecutive_failures < 1:
        raise ValueError("the backoff follows at least one failure")
    # The exponent is capped so a failure count of millions cannot overflow a float.
    exponent = min(consecutive_failures - 1, 32)
    return min(REDELIVERY_BACKOFF_FIRST_S * 2.0**exponent, REDELIVERY_BACKOFF_MAX_S)


@dataclass(frozen=True, slots=True)
class RawKafkaRecord:
    """One consumed record as the protocol layer sees it, free of aiokafka types."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int

    @classmethod
    def from_consumer_record(cls, record: ConsumerRecord[Any, Any]) -> RawKafkaRecord:
        value = record.value
        if not isinstance(value, bytes):
            # Only a tombstone (None) can get here; nobody in the federation sends one.
            raise TypeError(
                f"record {record.topic}/{record.partition}@{record.offset} has no value"
            )
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=value,
            headers=tuple((name, bytes(data)) for name, data in record.headers),
            timestamp_ms=record.timestamp,
        )

    def header(self, name: str) -> bytes | None:
        """The last value of header ``name``, as Kafka clients resolve repeated headers."""
        found: bytes | None = None
        for header_name, data in self.headers:
            if header_name == name:
                found = data
        return found


RecordHandler = Callable[[RawKafkaRecord], Awaitable[None]]


def _body_untouched(message: StreamMessage[Any]) -> bytes:
    """The subscriber's decoder: the record's bytes, whatever its content-type says."""
    body = message.body
    return body if isinstance(body, bytes) else b""


def _is_utf8(data: bytes | None) -> bool:
    try:
        (data or b"").decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


async def _parse_any_headers(
    record: ConsumerRecord[Any, Any],
    original: Callable[[ConsumerRecord[Any, Any]], Awaitable[StreamMessage[Any]]],
) -> StreamMessage[Any]:
    """FastStream's parser, minus the header values it cannot decode as UTF-8.

    It decodes every header value and would fail on any other bytes before the
    handler ran. The handler reads the untouched record (``raw_message``).
    """
    if all(_is_utf8(value) for _, value in record.headers):
        return await original(record)
    readable = [(name, value) for name, value in record.headers if _is_utf8(value)]
    message = await original(dataclasses.replace(record, headers=readable))
    message.raw_message = record
    return message


def build_broker(config: MessagingConfig, *, client_id: str | None = None) -> KafkaBroker:
    """A broker with every producer and consumer-default option stated, and no subscribers."""
    return KafkaBroker(
        # A list: FastStream hands a string to aiokafka as one host, so a cluster's
        # "a:9092,b:9092" would be read as the host "a:9092,b".
        [server.strip() for server in config.bootstrap_servers.split(",") if server.strip()],
        client_id=client_id or f"a6-node-{config.party}",
        acks=PRODUCER_ACKS,
        enable_idempotence=True,
        linger_ms=PRODUCER_LINGER_MS,
        request_timeout_ms=PRODUCER_REQUEST_TIMEOUT_MS,
        retry_backoff_ms=PRODUCER_RETRY_BACKOFF_MS,
        max_request_size=PRODUCER_MAX_REQUEST_SIZE_BYTES,
        # Topics are created by ensure_topics with explicit partitions,
        # replication and retention; FastStream's own creation would use defaults.
        allow_auto_create_topics=False,
        graceful_timeout=BROKER_GRACEFUL_TIMEOUT_S,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        # mTLS when configured: FastStream passes the context to every aiokafka client.
        security=BaseSecurity(ssl_context=config.tls.ssl_context()) if config.tls else None,
    )


def subscribe_records(
    broker: KafkaBroker,
    *,
    topic: str,
    group_id: str,
    handle: RecordHandler,
    listener: ConsumerRebalanceListener | None = None,
) -> DefaultSubscriber:
    """Feed every record of ``topic`` to ``handle``, committing only after it returns.

    The consumer is a static member of its group (KIP-345): each group belongs to
    one node, so a node that crashed and restarts takes its partitions back at
    once under the same instance id, instead of waiting for a rebalance around
    the dead member that left partitions unread for a minute or more.
    """
    subscriber = broker.subscriber(
        topic,
        batch=False,
        group_id=group_id,
        group_instance_id=f"{group_id}.member",
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        max_poll_records=CONSUMER_MAX_POLL_RECORDS,
        fetch_max_bytes=CONSUMER_FETCH_MAX_BYTES,
        max_partition_fetch_bytes=CONSUMER_MAX_PARTITION_FETCH_BYTES,
        session_timeout_ms=CONSUMER_SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=CONSUMER_HEARTBEAT_INTERVAL_MS,
        max_poll_interval_ms=CONSUMER_MAX_POLL_INTERVAL_MS,
        max_workers=None,
        no_reply=True,
        parser=_parse_any_headers,
        decoder=_body_untouched,
        # A consumer that keeps its own offsets (the unit index) seeks to them here.
        listener=listener,
    )
    # Consecutive failures per partition, for the backoff; reset by a success.
    failures: dict[tuple[str, int], int] = {}

    async def on_record(message: KafkaMessage) -> None:
        raw = message.raw_message
        if not isinstance(raw, ConsumerRecord):
            raise TypeError(f"expected one consumer record, got {type(raw).__name__}")
        if not isinstance(raw.value, bytes):
            # A tombstone can never become a protocol message; the handler sees
            # it as empty bytes and refuses it like any other undecodable record.
            raw = dataclasses.replace(raw, value=b"")
        record = RawKafkaRecord.from_consumer_record(raw)
        partition = (record.topic, record.partition)
        try:
            await handle(record)
        except Exception:
            failures[partition] = failures.get(partition, 0) + 1
            delay_s = redelivery_backoff_s(failures[partition])
            # FastStream logs the exception with its traceback; this says what happens next.
            _log.warning(
                "handler failed; the record will be redelivered",
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                consecutive_failures=failures[partition],
                redelivery_delay_s=delay_s,
            )
            await asyncio.sleep(delay_s)
            raise
        failures.pop(partition, None)

    subscriber(on_record)
    return subscriber


def check_manual_commit(subscriber: DefaultSubscriber) -> None:
    """Refuse a started subscriber whose consumer auto-commits: that would be at-most-once.

    FastStream sets aiokafka's ``enable_auto_commit`` from the ack policy and
    takes no explicit value, so the setting is checked where it lands.
    """
    consumer = subscriber.consumer
    if consumer is not None and getattr(consumer, "_enable_auto_commit", False) is not False:
        raise MessagingError(
            f"consumer of {subscriber.topic_names} auto-commits offsets; "
            "offsets must be committed only after the handler's transaction"
        )


def build_node_broker(
    config: MessagingConfig, *, handle_inbox: RecordHandler, handle_decision: RecordHandler
) -> tuple[KafkaBroker, DefaultSubscriber, DefaultSubscriber]:
    """The node's broker with its inbox and decision subscribers registered (not started)."""
    broker = build_broker(config)
    inbox = subscribe_records(
        broker, topic=config.inbox_topic, group_id=config.inbox_group_id, handle=handle_inbox
    )
    decisions = subscribe_records(
        broker,
        topic=config.decision_topic,
        group_id=config.decision_group_id,
        handle=handle_decision,
    )
    return broker, inbox, decisions


class BrokerSender:
    """A ``RecordSender`` over a started FastStream broker's producer (tests, tools).

    It cannot replace a producer that went bad; the node's relay uses
    :class:`ProducerSender`, which can.
    """

    def __init__(self, broker: KafkaBroker) -> None:
        self._broker = broker

    async def send(
        self, topic: str, key: bytes | None, value: bytes, headers: Mapping[str, str]
    ) -> asyncio.Future[Any]:
        # no_confirm=True returns once the record is queued in the producer, so
        # the relay can put a whole batch in flight, in order, and then await
        # the acknowledgements. Bytes go out as they are (FastStream adds a
        # content-type and a correlation_id header).
        future: asyncio.Future[Any] = await self._broker.publish(
            value, topic, key=key, headers=dict(headers), no_confirm=True
        )
        return future


def producer_options(config: MessagingConfig, *, client_id: str | None = None) -> dict[str, Any]:
    """The aiokafka producer settings of ``build_broker``, for a producer of the relay's own."""
    return {
        "bootstrap_servers": config.bootstrap_servers,
        "client_id": client_id or f"a6-node-{config.party}-relay",
        "acks": PRODUCER_ACKS,
        "enable_idempotence": True,
        "linger_ms": PRODUCER_LINGER_MS,
        "request_timeout_ms": PRODUCER_REQUEST_TIMEOUT_MS,
        "retry_backoff_ms": PRODUCER_RETRY_BACKOFF_MS,
        "max_request_size": PRODUCER_MAX_REQUEST_SIZE_BYTES,
        # The same mTLS identity as the node's other clients, when configured.
        **client_security_options(config.tls),
    }


class ProducerSender:
    """The relay's ``RecordSender``: an aiokafka producer of its own, which it can rebuild.

    Why a producer of its own and not the FastStream broker's: the relay must be
    able to throw a producer away and start a fresh one without restarting the
    node, and FastStream offers no way to swap the producer of a running broker.
    aiokafka 0.14's idempotent producer stays broken after a broker outage
    longer than ``request_timeout_ms`` under traffic (reproduced by
    tests/integration/messaging/test_relay_outage.py): a shutting-down broker
    can report its partitions leaderless, batches for them expire in
    ``MessageAccumulator.drain_by_nodes`` (``LeaderNotAvailableError``) after they
    took their sequence numbers, so once the broker is back every later batch to
    those partitions carries a sequence the broker sees as a gap and fails with
    ``OutOfOrderSequenceNumber``, which aiokafka neither retries nor repairs (the
    Java client bumps the epoch). A fresh producer has a new producer id
    and writes again. The relay calls :meth:`rebuild` when its passes keep failing.
    """

    def __init__(self, config: MessagingConfig, *, client_id: str | None = None) -> None:
        self._options = producer_options(config, client_id=client_id)
        self._producer: AIOKafkaProducer | None = None
        self.rebuild_count = 0

    async def start(self) -> None:
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(**self._options)
        try:
            await producer.start()
        except BaseException:
            # A broker still down: leave no half-started client behind.
            await _close_producer(producer)
            raise
        self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await _close_producer(producer)

    async def rebuild(self) -> None:
        """Drop the current producer (bounded) and start a fresh one."""
        await self.stop()
        self.rebuild_count += 1
        await self.start()

    async def send(
        self, topic: str, key: bytes | None, value: bytes, headers: Mapping[str, str]
    ) -> asyncio.Future[Any]:
        producer = self._producer
        if producer is None:
            raise MessagingError("the relay's producer is not started")
        future: asyncio.Future[Any] = await producer.send(
            topic,
            value=value,
            key=key,
            headers=[(name, header.encode()) for name, header in headers.items()],
        )
        return future


async def _close_producer(producer: AIOKafkaProducer) -> None:
    """Stop ``producer`` within ``PRODUCER_CLOSE_TIMEOUT_S``; past that, abandon what it holds.

    Whatever it still held is still unsent in the outbox, so dropping it loses nothing.
    """
    try:
        await asyncio.wait_for(producer.stop(), PRODUCER_CLOSE_TIMEOUT_S)
    except Exception as error:
        _log.warning(
            "producer did not close cleanly; abandoning it",
            error_type=type(error).__name__,
            error=str(error),
            timeout_s=PRODUCER_CLOSE_TIMEOUT_S,
        )
        # aiokafka has no public abort: stop its sender task and connections directly.
        sender = getattr(producer, "_sender", None)
        with contextlib.suppress(Exception):
            if sender is not None:
                await asyncio.wait_for(sender.close(), PRODUCER_CLOSE_TIMEOUT_S)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.client.close(), PRODUCER_CLOSE_TIMEOUT_S)
