"""The outbox relay: publishes committed outbox rows to Kafka, at least once, in id order per key.

One asyncio task per node. Each pass loads the oldest unsent rows (a bounded
batch) and publishes them per ordering group, one group per (topic, key): the
rows of one group go out one after the other, each only once the broker has
acknowledged the one before it (acks=all), and the groups run side by side. A
row is marked sent once acknowledged. So the rows of one transfer to one topic
are never reordered, and a row the broker keeps refusing holds back only the
later rows of its own group: every other group, decisions included, is
published and marked in the same pass. A pass lasts at most
``RELAY_PUBLISH_TIMEOUT_S``, so a row committed behind one that hangs is
published within two passes and a backoff (about 130 s at worst), however long
the hanging row keeps failing, as long as fewer than ``RELAY_BATCH_SIZE_MAX``
rows are held back at once (a pass loads the oldest unsent rows). A crash between
the acknowledgement and the mark leaves the rows unsent, so the next start
publishes them again: receivers drop the duplicates with their inbox. That is
also the whole recovery story: the first pass after ``start`` publishes every
row still unsent, however old.

The relay wakes on ``notify()`` (a unit of work calls it after a commit that
wrote outbox rows) and otherwise polls, so a missed poke delays a message by
one poll interval at most. A pass in which some row failed is followed by a
backoff that doubles up to a ceiling (``RELAY_BACKOFF_MAX_S``), and the
failed rows come first in the next pass: the relay never gives up on a row,
because a dropped COMMIT or vote would break the transfer's atomicity; the
row's ``attempt_count`` tells operators that something is stuck. Each failing
pass logs the producer's own exception (type and message). After
``RELAY_REBUILD_AFTER_FAILED_PASSES`` failing passes in a row the relay asks the
sender to rebuild its producer (``ProducerSender.rebuild``): aiokafka's
producer can stay broken after a long broker outage (see ``ProducerSender``),
and only a fresh one recovers without restarting the node. How long the
oldest unsent row has waited is what health and ``/metrics`` report
(``oldest_unsent_age_s``).

The database is reached through a synchronous SQLAlchemy ``Engine`` in a
worker thread, so the event loop never blocks on the database.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import structlog
from sqlalchemy import Engine, Table, func, select, update

from .errors import MessagingError
from .outbox import utc_now

_log = structlog.get_logger(__name__)

# A new row waits at most this long when nobody pokes the relay.
RELAY_POLL_INTERVAL_S = 1.0
# Rows loaded and put in flight at once: enough to fill the producer's batches,
# few enough that one failed batch republishes little.
RELAY_BATCH_SIZE_MAX = 200
# One pass's wait for the broker's acknowledgements; beyond the producer's own
# request timeout, so a slow broker fails the send before this fires. Rows not
# acknowledged by then stay unsent and come first in the next pass.
RELAY_PUBLISH_TIMEOUT_S = 60.0
# Failing passes in a row after which the sender gets a fresh producer. With the
# backoff below that is a few seconds of failures: a transient error clears
# sooner, a producer left broken by an outage gets replaced promptly.
RELAY_REBUILD_AFTER_FAILED_PASSES = 3
# A rebuild that itself fails (the broker is still down) is retried at the next
# multiple of RELAY_REBUILD_AFTER_FAILED_PASSES; its start is bounded by this.
RELAY_REBUILD_TIMEOUT_S = 30.0
RELAY_BACKOFF_INITIAL_S = 0.1
RELAY_BACKOFF_MAX_S = 10.0
# publish_pending (recovery, drain) stops after this many full batches and
# leaves the rest to the loop, so one call cannot run unbounded.
RELAY_DRAIN_BATCHES_MAX = 1000
# How long stop() lets the current pass and a last drain finish.
RELAY_STOP_TIMEOUT_S = 10.0


class RecordSender(Protocol):
    """The producer as the relay needs it; ``BrokerSender`` is the Kafka one."""

    async def send(
        self, topic: str, key: bytes | None, value: bytes, headers: Mapping[str, str]
    ) -> asyncio.Future[Any]:
        """Put one record in flight; the future resolves once the broker acknowledged it."""
        ...


@runtime_checkable
class RebuildableSender(RecordSender, Protocol):
    """A sender that can replace its producer with a fresh one."""

    async def rebuild(self) -> None: ...


class RelayPublishError(MessagingError):
    """Some rows of a pass were not acknowledged; every acknowledged row was marked sent."""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One unsent outbox row, as loaded for publishing."""

    id: int
    topic: str
    key: bytes | None
    value: bytes
    headers: dict[str, str]


class OutboxRelay:
    """Publishes the outbox; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        table: Table,
        sender: RecordSender,
        *,
        poll_interval_s: float = RELAY_POLL_INTERVAL_S,
        batch_size_max: int = RELAY_BATCH_SIZE_MAX,
        publish_timeout_s: float = RELAY_PUBLISH_TIMEOUT_S,
        backoff_initial_s: float = RELAY_BACKOFF_INITIAL_S,
        backoff_max_s: float = RELAY_BACKOFF_MAX_S,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if batch_size_max < 1 or poll_interval_s <= 0 or backoff_initial_s <= 0:
            raise ValueError("batch size, poll interval and backoff must be positive")
        self._engine = engine
        self._table = table
        self._sender = sender
        self._poll_interval_s = poll_interval_s
        self._batch_size_max = batch_size_max
        self._publish_timeout_s = publish_timeout_s
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = max(backoff_max_s, backoff_initial_s)
        self._clock = clock
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        # One pass at a time: the loop and an explicit publish_pending must not
        # interleave, or two passes would send the same rows out of order.
        self._pass_lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        # Observable progress, for tests now and metrics later.
        self.published_count = 0
        self.pass_count = 0
        self.failed_pass_count = 0
        self.consecutive_failed_pass_count = 0
        self.rebuild_count = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def notify(self) -> None:
        """Wake the relay now; safe to call from any thread (e.g. a database worker)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if current is loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    async def start(self) -> None:
        """Start the loop; its first pass republishes every unsent row (recovery)."""
        if self.running:
            return
        self._loop = asyncio.get_running_loop()
        self._stopping.clear()
        self._wake.set()
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self, *, drain: bool = True, timeout_s: float = RELAY_STOP_TIMEOUT_S) -> None:
        """Stop the loop; with ``drain`` first publish what is committed, within ``timeout_s``.

        Whatever is left unsent stays in the outbox for the next start.
        """
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        self._wake.set()
        if not drain:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, timeout_s)
        if drain:
            try:
                await asyncio.wait_for(self.publish_pending(), timeout_s)
            except Exception as error:
                # Stop must go on to close the broker; the rows are safe in the outbox.
                _log.warning(
                    "outbox drain incomplete; rows stay for the next start", error=repr(error)
                )

    async def publish_pending(self) -> int:
        """Publish unsent rows until the backlog is empty (bounded); return how many were sent."""
        sent_count = 0
        for _ in range(RELAY_DRAIN_BATCHES_MAX):
            batch_count = await self._publish_one_batch()
            sent_count += batch_count
            if batch_count < self._batch_size_max:
                break
        return sent_count

    async def _run(self) -> None:
        backoff_s = self._backoff_initial_s
        while not self._stopping.is_set():
            # Cleared before the pass so that a poke during the pass triggers another.
            self._wake.clear()
            try:
                batch_count = await self._publish_one_batch()
            except Exception as error:
                # Any failure (broker, database) is retried: the rows are safe in the outbox.
                self.failed_pass_count += 1
                self.consecutive_failed_pass_count += 1
                cause = _root_cause(error)
                _log.warning(
                    "outbox relay pass failed",
                    error=str(error),
                    cause_type=type(cause).__name__,
                    cause=str(cause) or repr(cause),
                    failed_passes_in_a_row=self.consecutive_failed_pass_count,
                    retry_in_s=backoff_s,
                )
                if self.consecutive_failed_pass_count % RELAY_REBUILD_AFTER_FAILED_PASSES == 0:
                    await self._rebuild_sender()
                await self._sleep_unless_stopping(backoff_s)
                backoff_s = min(backoff_s * 2, self._backoff_max_s)
                continue
            self.pass_count += 1
            self.consecutive_failed_pass_count = 0
            backoff_s = self._backoff_initial_s
            if batch_count < self._batch_size_max:
                await self._wait_for_work()

    async def _rebuild_sender(self) -> None:
        sender = self._sender
        if not isinstance(sender, RebuildableSender):
            return
        async with self._pass_lock:
            try:
                await asyncio.wait_for(sender.rebuild(), RELAY_REBUILD_TIMEOUT_S)
            except Exception as error:
                _log.warning(
                    "outbox relay could not rebuild its producer; it will try again",
                    error_type=type(error).__name__,
                    error=str(error) or repr(error),
                )
                return
        self.rebuild_count += 1
        _log.warning(
            "outbox relay rebuilt its producer",
            failed_passes_in_a_row=self.consecutive_failed_pass_count,
        )

    async def _wait_for_work(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)

    async def _sleep_unless_stopping(self, delay_s: float) -> None:
        # A poke must not cut a backoff short, or a down broker plus busy
        # writers would turn the backoff into a hot loop; only stop does.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay_s)

    async def _publish_one_batch(self) -> int:
        async with self._pass_lock:
            rows = await asyncio.to_thread(self._load_unsent)
            if not rows:
                return 0
            await self._publish_rows(rows)
            return len(rows)

    async def _publish_rows(self, rows: Sequence[OutboxRow]) -> None:
        acknowledged, failures = await self._send_by_group(rows)
        # Only rows that were tried count an attempt; those held back behind a
        # failed row of their group were not sent at all.
        await asyncio.to_thread(self._mark_sent, sorted(acknowledged), sorted(failures))
        self.published_count += len(acknowledged)
        unsent_ids = [row.id for row in rows if row.id not in acknowledged]
        if unsent_ids:
            first_failed = min(failures) if failures else unsent_ids[0]
            raise RelayPublishError(
                f"{len(unsent_ids)} of {len(rows)} outbox rows were not acknowledged "
                f"(first failure: row {first_failed}); the other {len(acknowledged)} were"
            ) from failures.get(first_failed)

    async def _send_by_group(
        self, rows: Sequence[OutboxRow]
    ) -> tuple[set[int], dict[int, BaseException]]:
        """Publish ``rows`` per (topic, key) group: in id order within a group, groups at once.

        Returns the ids the broker acknowledged and, per failed row, its error.
        A group stops at its first failure (its later rows are not sent, so they
        cannot overtake it); the whole pass is bounded by the publish timeout,
        and rows still waiting then count as failed.
        """
        groups: dict[tuple[str, bytes | None], list[OutboxRow]] = {}
        for row in rows:
            groups.setdefault((row.topic, row.key), []).append(row)
        acknowledged: set[int] = set()
        failures: dict[int, BaseException] = {}

        async def publish_group(group: list[OutboxRow]) -> None:
            for row in group:
                try:
                    future = await self._sender.send(row.topic, row.key, row.value, row.headers)
                    _check_acknowledgement(row, await future)
                except Exception as error:
                    failures[row.id] = error
                    return
                acknowledged.add(row.id)

        tasks = [asyncio.ensure_future(publish_group(group)) for group in groups.values()]
        _, pending = await asyncio.wait(tasks, timeout=self._publish_timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            timeout = TimeoutError(
                f"no acknowledgement within the publish timeout of {self._publish_timeout_s} s"
            )
            for row in rows:
                if row.id not in acknowledged:
                    failures.setdefault(row.id, timeout)
        return acknowledged, failures

    def _load_unsent(self) -> list[OutboxRow]:
        table = self._table
        query = (
            select(table.c.id, table.c.topic, table.c.key, table.c.value, table.c.headers)
            .where(table.c.sent_at.is_(None))
            .order_by(table.c.id)
            .limit(self._batch_size_max)
        )
        with self._engine.connect() as connection:
            found = connection.execute(query).all()
        return [
            OutboxRow(
                id=int(found_row.id),
                topic=str(found_row.topic),
                key=None if found_row.key is None else bytes(found_row.key),
                value=bytes(found_row.value),
                headers=dict(found_row.headers or {}),
            )
            for found_row in found
        ]

    def _mark_sent(self, sent_ids: Sequence[int], failed_ids: Sequence[int]) -> None:
        table = self._table
        with self._engine.begin() as connection:
            if sent_ids:
                connection.execute(
                    update(table)
                    .where(table.c.id.in_(sent_ids), table.c.sent_at.is_(None))
                    .values(sent_at=self._clock(), attempt_count=table.c.attempt_count + 1)
                )
            if failed_ids:
                connection.execute(
                    update(table)
                    .where(table.c.id.in_(failed_ids))
                    .values(attempt_count=table.c.attempt_count + 1)
                )


def oldest_unsent_age_s(engine: Engine, table: Table, now: datetime) -> float:
    """Seconds the oldest unsent outbox row has waited (0.0 when nothing waits)."""
    with engine.connect() as connection:
        oldest = connection.execute(
            select(func.min(table.c.created_at)).where(table.c.sent_at.is_(None))
        ).scalar_one()
    if oldest is None:
        return 0.0
    if oldest.tzinfo is None:
        # SQLite hands back naive datetimes; the outbox writes UTC.
        oldest = oldest.replace(tzinfo=UTC)
    return max(float((now - oldest).total_seconds()), 0.0)


def _root_cause(error: BaseException) -> BaseException:
    """The innermost exception of a chain: the producer's own error, not the relay's summary."""
    seen: set[int] = set()
    while error.__cause__ is not None and id(error) not in seen:
        seen.add(id(error))
        error = error.__cause__
    return error


def _check_acknowledgement(row: OutboxRow, metadata: Any) -> None:
    """The broker must have stored the record where the row said, or the mark would lie."""
    topic = getattr(metadata, "topic", row.topic)
    offset = getattr(metadata, "offset", 0)
    if topic != row.topic or offset is None or offset < 0:
        raise MessagingError(
            f"outbox row {row.id}: broker acknowledged {topic!r} at offset {offset}, "
            f"expected {row.topic!r} at a real offset"
        )
