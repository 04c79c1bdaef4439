"""Poison records on the real broker: refused into quarantine, and the partition moves on.

Each hostile record is written, before a transfer starts, to every partition of
both nodes' inboxes and to the decision topic, so whatever partition the
transfer's PREPARE, VOTE, DECISION and DONE land in, a poison record comes
first. The transfer must still commit at both nodes; each poison record must
have its quarantine row (one per record) with its reason code, and the
``/metrics`` counter must count them by topic kind and reason.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from a6wire.decoding import RECORD_SIZE_MAX_BYTES
from a6wire.keys import generate_private_key
from a6wire.messages import Done, DoneOutcome
from a6wire.signing import seal
from a6wire.verification import encode_envelope
from registry.adapters.messaging import QuarantinedRow, SqlQuarantine
from tests.integration.transfers.test_two_nodes import (
    RECEIVER_ACCOUNT,
    SENDER_ACCOUNT,
    RunningNode,
    _body,
    _labels,
    _metric_samples,
    federation,
)
from tests.unit.application.support import PARTNER, PARTY

__all__ = ["federation"]  # the fixture, shared with the two-node tests

# Generous for a cold JVM broker; the quarantine rows usually appear within a second.
QUARANTINE_WAIT_S = 60.0
POLL_INTERVAL_S = 0.2
RANDOM_BYTES_SEED = 20_261_201
RANDOM_BYTES_LENGTH_BYTES = 4_096
# A thousand digits past int()'s own limit (4300 digits in CPython).
HUGE_INTEGER_DIGITS = 5_300
# Far past both our bound and the interpreter's recursion limit.
NESTING_LEVELS = 100_000


@dataclass(frozen=True)
class Poison:
    name: str
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    inbox_reason: str
    decision_reason: str


def _envelope_json(sent_at: str | None = None, schema_version: str | None = None) -> bytes:
    """A well-formed DONE from ``PARTY``, signed by a key that is not ``PARTY``'s."""
    envelope = seal(
        Done(transfer_id=uuid.uuid4(), coordinator_party=PARTNER, outcome=DoneOutcome.COMMITTED),
        sender_party=PARTY,
        sent_at=datetime.now(UTC),
        message_id=uuid.uuid4(),
        private_key=generate_private_key(),
    )
    data = encode_envelope(envelope)
    if sent_at is None and schema_version is None:
        return data
    raw = json.loads(data)
    if sent_at is not None:
        raw["sent_at"] = sent_at
    if schema_version is not None:
        raw["schema_version"] = schema_version
    return json.dumps(raw).encode()


def _poisons() -> list[Poison]:
    json_header = (("content-type", b"application/json"),)
    oversize_padding = b"x" * (RECORD_SIZE_MAX_BYTES + 1)
    return [
        Poison(
            "huge integer",
            b'{"schema_version": 1, "n": ' + b"9" * HUGE_INTEGER_DIGITS + b"}",
            (),
            "NUMBER_TOO_LONG",
            "NUMBER_TOO_LONG",
        ),
        Poison(
            "deep nesting",
            b"[" * NESTING_LEVELS + b"]" * NESTING_LEVELS,
            (),
            "NESTING_TOO_DEEP",
            "NESTING_TOO_DEEP",
        ),
        Poison(
            # Converting this to UTC overflows datetime.
            "sent_at out of range",
            _envelope_json(sent_at="9999-12-31T23:59:59-23:59"),
            (),
            "DATETIME_OUT_OF_RANGE",
            "DATETIME_OUT_OF_RANGE",
        ),
        Poison(
            # A major this node does not speak: refused before the payload is read.
            "unknown schema major",
            _envelope_json(schema_version="3.0"),
            (),
            "UNSUPPORTED_SCHEMA_VERSION",
            "UNSUPPORTED_SCHEMA_VERSION",
        ),
        Poison(
            "JSON content-type on garbage",
            b"this is not JSON {",
            json_header,
            "NOT_JSON",
            "NOT_JSON",
        ),
        Poison(
            "random bytes",
            random.Random(RANDOM_BYTES_SEED).randbytes(RANDOM_BYTES_LENGTH_BYTES),
            (),
            "NOT_UTF8",
            "NOT_UTF8",
        ),
        Poison(
            "oversize",
            b'{"pad": "' + oversize_padding + b'"}',
            json_header,
            "RECORD_TOO_LARGE",
            "RECORD_TOO_LARGE",
        ),
        Poison("invalid UTF-8", b'{"a": "\xff\xfe"}', json_header, "NOT_UTF8", "NOT_UTF8"),
        Poison(
            "header not UTF-8",
            b"{}",
            (("content-type", b"\xff\xfe"),),
            "MALFORMED_MESSAGE",
            "MALFORMED_MESSAGE",
        ),
        Poison("tombstone", None, (), "NOT_JSON", "NOT_JSON"),
        # Decodes, but fails verification: a member's name, another key.
        Poison("bad signature", _envelope_json(), (), "BAD_SIGNATURE", "NOT_A_DECISION"),
    ]


async def _publish(bootstrap: str, records: list[tuple[str, int, Poison]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for topic, partition, poison in records:
            await producer.send_and_wait(
                topic,
                poison.value,
                key=b"poison",
                partition=partition,
                headers=list(poison.headers),
            )
    finally:
        await producer.stop()


def _wait_rows(node: RunningNode, topic: str, count: int) -> list[QuarantinedRow]:
    quarantine = SqlQuarantine(node.node.engine)
    deadline = time.monotonic() + QUARANTINE_WAIT_S
    while True:
        rows = quarantine.rows(topic)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(POLL_INTERVAL_S)


def test_poison_records_are_quarantined_and_a_transfer_in_their_partitions_commits(
    federation: dict[str, RunningNode], kafka_bootstrap: str
) -> None:
    sender, receiver = federation[PARTY], federation[PARTNER]
    poisons = _poisons()
    configs = {}
    for running in (sender, receiver):
        messaging = running.node.messaging
        assert messaging is not None
        configs[running.node.settings.party] = messaging.config
    decision_topic = configs[PARTY].decision_topic
    inbox_partitions = range(configs[PARTY].inbox_topic_partitions)
    records = [
        (configs[party].inbox_topic, partition, poison)
        for party in (PARTY, PARTNER)
        for partition in inbox_partitions
        for poison in poisons
    ]
    decision_partitions = range(configs[PARTY].decision_topic_partitions)
    records += [
        (decision_topic, partition, poison)
        for partition in decision_partitions
        for poison in poisons
    ]
    asyncio.run(_publish(kafka_bootstrap, records))

    # A transfer whose every record lands behind poison in its partition.
    response = sender.client.post(
        "/v1/transfers?wait_s=30", json=_body(), headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    assert response.status_code == 202, response.text
    transfer_id = response.json()["transfer_id"]
    assert sender.wait_final(transfer_id, completed=True)["status"] == "COMMITTED"
    assert receiver.wait_final(transfer_id)["status"] == "COMMITTED"
    assert sender.ledger().held(SENDER_ACCOUNT) == 60
    assert receiver.ledger().held(RECEIVER_ACCOUNT) == 40

    for running in (sender, receiver):
        config = configs[running.node.settings.party]
        expected = {
            (config.inbox_topic, partition, poison.inbox_reason, poison.name)
            for partition in inbox_partitions
            for poison in poisons
        } | {
            (decision_topic, partition, poison.decision_reason, poison.name)
            for partition in decision_partitions
            for poison in poisons
        }
        inbox_rows = _wait_rows(running, config.inbox_topic, len(poisons) * len(inbox_partitions))
        decision_rows = _wait_rows(running, decision_topic, len(poisons) * len(decision_partitions))
        rows = inbox_rows + decision_rows
        # Poison records are the first records of their partitions, in publish order.
        named = {
            (row.topic, row.partition, row.reason_code, poisons[row.offset].name) for row in rows
        }
        assert named == expected
        assert len(rows) == len(expected)  # one row per record, however often it was read
        for row in rows:
            poison = poisons[row.offset]
            size = len(poison.value or b"")
            assert row.value_size_bytes == size
            assert row.value_prefix == (poison.value or b"")[: len(row.value_prefix)]
            assert row.key == b"poison"

        samples = _metric_samples(running)
        counted: Counter[tuple[str, str]] = Counter()
        for row in rows:
            kind = "decision" if row.topic == decision_topic else "inbox"
            counted[(kind, row.reason_code)] += 1
        for (kind, reason), count in counted.items():
            key = (
                "registry_quarantined_records_total",
                _labels({"topic_kind": kind, "reason": reason}),
            )
            assert samples[key] == count, (kind, reason)
