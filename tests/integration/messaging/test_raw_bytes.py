"""FastStream 0.7.8 on the real broker: the handler gets every record's bytes untouched.

FastStream decodes a body before the handler runs: as JSON when the
content-type header says so or when there is none, and it decodes every header
value as UTF-8. Some of these failures escaped its own error handling and,
under NACK_ON_ERROR, sent the record back forever. Each record below is
followed by a good one in the same partition; the handler must see both, and
the group's offset must move past both.
"""

from __future__ import annotations

import random

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from registry.adapters.messaging import RawKafkaRecord, build_broker, subscribe_records

from .support import UniqueNames, committed_offsets, create_topic, eventually

pytestmark = pytest.mark.integration

JSON = (("content-type", b"application/json"),)
RANDOM_BYTES_SEED = 7
POISON: dict[str, tuple[bytes | None, tuple[tuple[str, bytes], ...]]] = {
    "garbage under a JSON content-type": (b"this is not JSON {", JSON),
    "huge integer, no content-type": (b'{"n": ' + b"9" * 5_000 + b"}", ()),
    "deep nesting, no content-type": (b"[" * 100_000 + b"]" * 100_000, ()),
    "invalid UTF-8 under a JSON content-type": (b'{"a": "\xff"}', JSON),
    "random bytes": (random.Random(RANDOM_BYTES_SEED).randbytes(1_024), ()),
    "a header value that is not UTF-8": (b"{}", (("content-type", b"\xff\xfe"),)),
    "a tombstone": (None, ()),
}


@pytest.mark.parametrize("name", sorted(POISON))
async def test_the_handler_gets_raw_bytes_and_the_offset_moves_past(
    name: str, kafka_bootstrap: str, names: UniqueNames
) -> None:
    value, headers = POISON[name]
    topic = names.topic("raw")
    group_id = names.group("raw")
    await create_topic(kafka_bootstrap, topic)
    handled: list[RawKafkaRecord] = []

    async def handle(record: RawKafkaRecord) -> None:
        handled.append(record)

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"k", headers=list(headers))
        await producer.send_and_wait(topic, b"after", key=b"k")
    finally:
        await producer.stop()
    broker = build_broker(names.config("AAA", kafka_bootstrap))
    subscribe_records(broker, topic=topic, group_id=group_id, handle=handle)
    await broker.start()
    try:
        await eventually(lambda: len(handled) == 2, what=f"both records ({name})")

        async def committed_past_both() -> bool:
            offsets = await committed_offsets(kafka_bootstrap, group_id)
            return offsets == {TopicPartition(topic, 0): 2}

        await eventually(committed_past_both, what="the commit past both records")
    finally:
        await broker.stop()
    assert [record.value for record in handled] == [value or b"", b"after"]
    assert handled[0].headers == headers
