"""Topic creation at node start, and a two-node edge end to end."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from sqlalchemy import Engine

from registry.adapters.messaging import (
    MESSAGING_TABLES,
    MessagingEdge,
    RawKafkaRecord,
    ensure_topics,
    node_topic_specs,
)

from .support import (
    MESSAGE_ID_HEADER,
    UniqueNames,
    apply_once,
    effect_counts,
    eventually,
    messaging_engine,
)

pytestmark = pytest.mark.integration


async def _describe(bootstrap: str, topic: str) -> tuple[int, dict[str, str]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="messaging-tests")
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)]
        )
    finally:
        await admin.close()
    ((_, _, _, _, entries),) = response.resources
    return len(described["partitions"]), {entry[0]: entry[1] for entry in entries}


async def test_two_nodes_create_the_shared_topics_concurrently_and_idempotently(
    kafka_bootstrap: str, names: UniqueNames
) -> None:
    configs = [
        names.config(party, kafka_bootstrap, decision_partitions=4) for party in ("AAA", "BBB")
    ]
    for _ in range(2):  # A second start finds everything in place.
        await asyncio.gather(
            *(
                ensure_topics(kafka_bootstrap, node_topic_specs(config), client_id=config.party)
                for config in configs
            )
        )

    partitions, decision_config = await _describe(kafka_bootstrap, names.topic("decisions"))
    assert partitions == 4
    assert decision_config["retention.ms"] == "-1"
    assert decision_config["cleanup.policy"] == "delete"
    assert decision_config["min.insync.replicas"] == "1"
    for config in configs:
        _, inbox_config = await _describe(kafka_bootstrap, config.inbox_topic)
        assert inbox_config["retention.ms"] == str(config.inbox_retention_ms)


async def test_two_edges_exchange_an_inbox_message_and_a_decision(
    engine: Engine, kafka_bootstrap: str, names: UniqueNames, tmp_path: Path
) -> None:
    # Each node has its own database, as in production: a shared outbox would
    # be published by both relays. The receiver's is a SQLite file.
    receiver_engine = messaging_engine(f"sqlite:///{tmp_path / 'receiver.sqlite3'}")
    engines = {"AAA": engine, "BBB": receiver_engine}
    received: dict[str, list[RawKafkaRecord]] = {"AAA": [], "BBB": []}
    decisions: dict[str, list[RawKafkaRecord]] = {"AAA": [], "BBB": []}

    def edge_for(party: str) -> MessagingEdge:
        edge: MessagingEdge

        async def handle_inbox(record: RawKafkaRecord) -> None:
            await asyncio.to_thread(apply_once, engines[party], edge.inbox, record)
            received[party].append(record)

        async def handle_decision(record: RawKafkaRecord) -> None:
            decisions[party].append(record)

        edge = MessagingEdge(
            names.config(party, kafka_bootstrap),
            engines[party],
            MESSAGING_TABLES,
            handle_inbox=handle_inbox,
            handle_decision=handle_decision,
        )
        return edge

    sender, receiver = edge_for("AAA"), edge_for("BBB")
    await asyncio.gather(sender.start(), receiver.start())
    try:
        with engine.begin() as connection:
            sender.outbox.add(
                connection,
                receiver.config.inbox_topic,
                "transfer-1",
                b"PREPARE",
                {MESSAGE_ID_HEADER: "prepare-1"},
            )
            sender.outbox.add(connection, sender.config.decision_topic, "transfer-1", b"COMMIT", {})
        sender.notify()
        await eventually(lambda: len(received["BBB"]) == 1, what="the PREPARE at BBB")
        await eventually(
            lambda: all(len(found) == 1 for found in decisions.values()),
            what="the decision at both nodes",
        )
        assert received["BBB"][0].value == b"PREPARE"
        assert received["BBB"][0].key == b"transfer-1"
        assert {record.value for found in decisions.values() for record in found} == {b"COMMIT"}

        async def caught_up() -> bool:
            lags = await receiver.consumer_lag()
            return bool(lags) and all(lag.lag == 0 for lag in lags)

        await eventually(caught_up, what="BBB's consumer lag to reach zero")
    finally:
        await asyncio.gather(sender.stop(), receiver.stop())
        receiver_engine.dispose()
    assert effect_counts(engines["BBB"]) == {"prepare-1": 1}
    assert received["AAA"] == []
