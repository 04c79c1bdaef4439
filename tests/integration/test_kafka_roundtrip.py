"""FastStream over a real Kafka broker: delivery, and what each ack policy commits.

What FastStream 0.7.8 does on Kafka (faststream/middlewares/acknowledgement and
faststream/kafka/message.py), which these tests pin down:

- The default policy is ACK_FIRST: aiokafka auto-commits, so a message is committed
  before (or while) it is handled and lost if the handler fails: at most once. Every
  subscriber here sets its policy explicitly.
- ACK: commit after the handler returns. If the handler raises, FastStream still acks,
  so the offset is committed and the message is not delivered again.
- REJECT_ON_ERROR: on Kafka a reject is an ack (FastStream warns about it): committed too.
- NACK_ON_ERROR: on an exception nothing is committed and the consumer seeks back to the
  message, so this consumer retries it at once and, once it is gone, the next member of
  the group starts from it: at least once. This is the policy for handlers whose failure
  must not lose a transfer. The retry has no back-off: a handler that keeps failing is
  called again in a tight loop (thousands of times a second against a local broker, each
  failure logged), so a handler that can fail for a while must pace itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
import warnings
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.schemas import Topic

pytestmark = pytest.mark.integration

# The first group join on a fresh broker takes a few seconds; a healthy broker never
# comes near this, and a broken one fails the test instead of hanging it.
MESSAGE_TIMEOUT_S = 30.0
COMMIT_POLL_INTERVAL_S = 0.1
ADMIN_REQUEST_TIMEOUT_MS = 10_000


@pytest.fixture
async def admin(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(
        bootstrap_servers=kafka_bootstrap, request_timeout_ms=ADMIN_REQUEST_TIMEOUT_MS
    )
    await client.start()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def topic(admin: AIOKafkaAdminClient) -> AsyncIterator[str]:
    """A topic of its own for each test, created explicitly (the broker auto-creates none)."""
    name = f"it-{uuid.uuid4().hex}"
    response = await admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
    errors = [(error[0], error[1]) for error in response.topic_errors if error[1] != 0]
    assert not errors, f"creating {name} failed: {errors}"
    yield name
    await admin.delete_topics([name])


def _group() -> str:
    return f"g-{uuid.uuid4().hex}"


async def _committed_offset(admin: AIOKafkaAdminClient, group: str, topic: str) -> int | None:
    offsets = await admin.list_consumer_group_offsets(group)
    committed = offsets.get(TopicPartition(topic, 0))
    return None if committed is None or committed.offset < 0 else int(committed.offset)


async def _wait_for_commit(
    admin: AIOKafkaAdminClient, group: str, topic: str, expected: int
) -> None:
    """The commit follows the handler's return, so poll for it (bounded)."""
    async with asyncio.timeout(MESSAGE_TIMEOUT_S):
        # Polling the broker: there is no local event to wait on.
        while await _committed_offset(admin, group, topic) != expected:  # noqa: ASYNC110
            await asyncio.sleep(COMMIT_POLL_INTERVAL_S)


def _subscribe(
    broker: KafkaBroker,
    topic: str,
    group: str,
    ack_policy: AckPolicy,
    handler: Callable[[dict[str, Any]], Any],
) -> None:
    # declare=False: the topic fixture created it; FastStream must not try again.
    broker.subscriber(
        Topic(topic, declare=False),
        group_id=group,
        auto_offset_reset="earliest",
        ack_policy=ack_policy,
    )(handler)


# ------------------------------------------------------------------ same body, two brokers


@contextlib.asynccontextmanager
async def _started(broker: KafkaBroker) -> AsyncIterator[KafkaBroker]:
    async with broker:
        await broker.start()
        yield broker


async def _published_message_is_handled(
    broker: KafkaBroker, topic: str, running: contextlib.AbstractAsyncContextManager[KafkaBroker]
) -> None:
    """One test body, run by FastStream's in-memory TestKafkaBroker and by a real broker."""
    transfer = {"transfer_id": str(uuid.uuid4()), "quantity": 250, "from": "CHE", "to": "THA"}
    received: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    async def handle(body: dict[str, Any]) -> None:
        received.set_result(body)

    _subscribe(broker, topic, _group(), AckPolicy.ACK, handle)
    async with running as connected:
        await connected.publish(transfer, topic)
        assert await asyncio.wait_for(received, MESSAGE_TIMEOUT_S) == transfer


async def test_published_message_is_handled_in_memory() -> None:
    # No Kafka needed: runs anywhere, and must agree with the real broker below.
    broker = KafkaBroker()
    await _published_message_is_handled(broker, f"mem-{uuid.uuid4().hex}", TestKafkaBroker(broker))


async def test_published_message_is_handled_by_a_real_broker(
    kafka_bootstrap: str, topic: str
) -> None:
    broker = KafkaBroker(kafka_bootstrap)
    await _published_message_is_handled(broker, topic, _started(broker))


# ------------------------------------------------------------------------- commit rules


async def test_ack_commits_after_the_handler_returns(
    kafka_bootstrap: str, topic: str, admin: AIOKafkaAdminClient
) -> None:
    group = _group()
    received: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    async def handle(body: dict[str, Any]) -> None:
        received.set_result(body)

    broker = KafkaBroker(kafka_bootstrap)
    _subscribe(broker, topic, group, AckPolicy.ACK, handle)
    async with broker:
        await broker.start()
        await broker.publish({"n": 1}, topic)
        assert await asyncio.wait_for(received, MESSAGE_TIMEOUT_S) == {"n": 1}
        await _wait_for_commit(admin, group, topic, expected=1)


async def test_nack_on_error_commits_nothing_and_the_group_gets_the_message_again(
    kafka_bootstrap: str, topic: str, admin: AIOKafkaAdminClient
) -> None:
    group = _group()
    message = {"transfer_id": "T-1", "quantity": 10}
    attempts: list[dict[str, Any]] = []
    first_attempt = asyncio.Event()

    async def fail(body: dict[str, Any]) -> None:
        attempts.append(body)
        first_attempt.set()
        raise RuntimeError("ledger write failed")

    failing = KafkaBroker(kafka_bootstrap)
    _subscribe(failing, topic, group, AckPolicy.NACK_ON_ERROR, fail)
    async with failing:
        await failing.start()
        await failing.publish(message, topic)
        await asyncio.wait_for(first_attempt.wait(), MESSAGE_TIMEOUT_S)
    # The consumer has left the group; it committed nothing (it retried meanwhile).
    assert attempts
    assert all(attempt == message for attempt in attempts)
    assert await _committed_offset(admin, group, topic) is None

    redelivered: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    async def succeed(body: dict[str, Any]) -> None:
        redelivered.set_result(body)

    recovering = KafkaBroker(kafka_bootstrap)
    _subscribe(recovering, topic, group, AckPolicy.ACK, succeed)
    async with recovering:
        await recovering.start()
        assert await asyncio.wait_for(redelivered, MESSAGE_TIMEOUT_S) == message
        await _wait_for_commit(admin, group, topic, expected=1)


@pytest.mark.parametrize("policy", [AckPolicy.ACK, AckPolicy.REJECT_ON_ERROR])
async def test_ack_and_reject_commit_even_when_the_handler_raises(
    policy: AckPolicy, kafka_bootstrap: str, topic: str, admin: AIOKafkaAdminClient
) -> None:
    """The trap: with these policies a failed message is committed, i.e. skipped."""
    group = _group()
    failed = asyncio.Event()

    async def fail(body: dict[str, Any]) -> None:
        failed.set()
        raise RuntimeError("ledger write failed")

    broker = KafkaBroker(kafka_bootstrap)
    with warnings.catch_warnings():
        # REJECT_ON_ERROR warns that it is ACK on Kafka: that is what is being shown here.
        warnings.simplefilter("ignore", UserWarning)
        _subscribe(broker, topic, group, policy, fail)
    async with broker:
        await broker.start()
        await broker.publish({"n": 1}, topic)
        await asyncio.wait_for(failed.wait(), MESSAGE_TIMEOUT_S)
        await _wait_for_commit(admin, group, topic, expected=1)
