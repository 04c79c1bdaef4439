"""Broker failures on a three-broker KRaft cluster, under a stream of transfers.

The cluster is deploy/kafka/broker.py --brokers 3 (three combined broker-controllers,
a three-voter quorum) on ``KAFKA_CLUSTER_PORT`` (default ``TEST_KAFKA_CLUSTER_PORT``;
brokers on PORT, PORT+2, PORT+4, controllers one above each). The nodes create their
topics with three replicas and ``min.insync.replicas=2`` because the cluster has three
brokers. Two real node processes (Rwanda transfers, Norway acquires).

- One broker down (SIGKILL of the leader of the decision topic's first partition,
  restarted later): every transfer ends the same at both Parties, none is lost or
  applied twice. The time from the kill to the last transfer settling is reported.
- Two brokers down: no write can reach two replicas, so a transfer stays PENDING at
  both ends (nothing is committed locally), and commits once a broker is back.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from a6wire.topics import DECISION_TOPIC
from tests.conftest import REPO_ROOT, _load_script, _unavailable
from tests.e2e.helpers import (
    World,
    assert_federation_invariants,
    assert_transfers_atomic,
    holdings,
    issue,
    open_account,
    record_loa,
    register_approach,
    running_federation,
    start_transfer,
    transfer_body,
    transfer_records,
    transfer_view,
    wait_status,
)

pytestmark = pytest.mark.slow

TEST_KAFKA_CLUSTER_PORT = 19096
CLUSTER_BROKERS = 3
SENDER = "RWA"
RECEIVER = "NOR"
PARTIES = (SENDER, RECEIVER)
APPROACH = "CA0301"
LOA = "RWA-LOA-0301"
VINTAGE = 2025

# The stream: transfers of one unit each, some before the kill, some while one
# broker is down, some after it is back.
TRANSFERS_BEFORE_KILL = 10
TRANSFERS_DURING_OUTAGE = 10
TRANSFERS_AFTER_RESTART = 10
STREAM_TOTAL = TRANSFERS_BEFORE_KILL + TRANSFERS_DURING_OUTAGE + TRANSFERS_AFTER_RESTART
STREAM_PAUSE_S = 0.2
# Leader elections, a group coordinator moving and producer retries on a loaded
# two-core runner: generous, and not an assertion on speed (the time is reported).
SETTLE_TIMEOUT_S = 300.0
# Long enough that no transfer aborts by deadline while brokers are down.
TRANSFER_DEADLINE_S = 900
# How long the two-brokers-down outage is watched for a transfer that must not move.
OUTAGE_OBSERVATION_S = 20.0
OUTAGE_POLL_S = 0.5


def _broker_script() -> ModuleType:
    return _load_script("a6_deploy_kafka_broker", REPO_ROOT / "deploy" / "kafka" / "broker.py")


class Cluster:
    """The three brokers of deploy/kafka/broker.py --brokers 3, by node id (1..3)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.script = _broker_script()
        self.ports = self.script.cluster_ports(port, CLUSTER_BROKERS)
        self.bootstrap = ",".join(self.script.bootstrap_address(p) for p in self.ports)

    def start(self, *node_ids: int) -> None:
        self.script.start_cluster(self.port, CLUSTER_BROKERS, only=list(node_ids) or None)

    def kill(self, node_id: int) -> None:
        pid = self.script.broker_pid(self.ports[node_id - 1])
        assert pid is not None, f"broker {node_id} is not running"
        os.kill(pid, signal.SIGKILL)
        while self.script.broker_pid(self.ports[node_id - 1]) is not None:
            time.sleep(OUTAGE_POLL_S)

    def stop(self) -> None:
        self.script.stop_cluster(self.port, CLUSTER_BROKERS)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    running = Cluster(int(os.environ.get("KAFKA_CLUSTER_PORT", TEST_KAFKA_CLUSTER_PORT)))
    already_up = all(running.script.broker_is_up(p) for p in running.ports)
    if not already_up:
        try:
            running.start()
        except running.script.BrokerError as exc:
            _unavailable(f"could not start the local three-broker Kafka cluster: {exc}")
    try:
        yield running
    finally:
        if not already_up:
            running.stop()


@pytest.fixture(scope="module")
def world(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base_dir: Path = tmp_path_factory.mktemp("cluster-faults")
    with running_federation(cluster.bootstrap, base_dir, PARTIES) as running:
        register_approach(running, APPROACH, PARTIES)
        record_loa(running, SENDER, LOA, APPROACH, (RECEIVER,))
        yield running


async def _decision_topic(bootstrap: str) -> list[dict[str, Any]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([DECISION_TOPIC])
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, DECISION_TOPIC)]
        )
    finally:
        await admin.close()
    # DescribeConfigs resources: (error, message, type, name, [(name, value, ...), ...]).
    entries = responses[0].resources[0][4]
    min_insync = {entry[0]: entry[1] for entry in entries}.get("min.insync.replicas")
    partitions: list[dict[str, Any]] = described[0]["partitions"]
    return [{**partition, "min_insync": min_insync} for partition in partitions]


def _accounts(world: World, name: str, quantity: int) -> tuple[str, str]:
    sender_account, receiver_account = f"{SENDER}-{name}", f"{RECEIVER}-{name}"
    open_account(world, SENDER, sender_account)
    open_account(world, RECEIVER, receiver_account)
    issue(world, SENDER, sender_account, APPROACH, quantity, vintage=VINTAGE, authorisation_id=LOA)
    return sender_account, receiver_account


def _post(world: World, sender_account: str, receiver_account: str) -> str:
    body = transfer_body(
        sender_account, RECEIVER, receiver_account, 1, LOA, deadline_s=TRANSFER_DEADLINE_S
    )
    start_transfer(world, SENDER, body)
    return str(body["transfer_id"])


def _final_everywhere(world: World, transfer_ids: list[str]) -> dict[str, str]:
    """Wait until each transfer is final at the sender (completed) and the receiver."""
    statuses: dict[str, str] = {}
    for transfer_id in transfer_ids:
        at_sender = wait_status(world, SENDER, transfer_id, timeout_s=SETTLE_TIMEOUT_S)
        if at_sender["status"] == "COMMITTED":
            wait_status(world, SENDER, transfer_id, timeout_s=SETTLE_TIMEOUT_S, completed=True)
            wait_status(world, RECEIVER, transfer_id, {"COMMITTED"}, timeout_s=SETTLE_TIMEOUT_S)
        statuses[transfer_id] = at_sender["status"]
    return statuses


def test_federation_topics_are_replicated_three_times(cluster: Cluster, world: World) -> None:
    partitions = asyncio.run(_decision_topic(cluster.bootstrap))
    assert partitions
    for partition in partitions:
        assert len(partition["replicas"]) == CLUSTER_BROKERS, partition
        assert partition["min_insync"] == "2", partition


def test_one_broker_killed_and_restarted_under_a_stream_of_transfers(
    cluster: Cluster, world: World, record_property: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    sender_account, receiver_account = _accounts(world, "STREAM", STREAM_TOTAL)
    leader = asyncio.run(_decision_topic(cluster.bootstrap))[0]["leader"]
    transfer_ids: list[str] = []
    for _ in range(TRANSFERS_BEFORE_KILL):
        transfer_ids.append(_post(world, sender_account, receiver_account))
        time.sleep(STREAM_PAUSE_S)
    killed_at = time.monotonic()
    cluster.kill(leader)
    for _ in range(TRANSFERS_DURING_OUTAGE):
        transfer_ids.append(_post(world, sender_account, receiver_account))
        time.sleep(STREAM_PAUSE_S)
    cluster.start(leader)
    for _ in range(TRANSFERS_AFTER_RESTART):
        transfer_ids.append(_post(world, sender_account, receiver_account))
        time.sleep(STREAM_PAUSE_S)
    statuses = _final_everywhere(world, transfer_ids)
    settled_s = time.monotonic() - killed_at
    record_property("settle_after_broker_kill_s", round(settled_s, 1))
    with capsys.disabled():
        print(
            f"\n[cluster-faults] broker {leader} (decision partition 0 leader) SIGKILLed; "
            f"{len(transfer_ids)} transfers settled {settled_s:.1f} s after the kill: "
            f"{sorted(statuses.values()).count('COMMITTED')} committed"
        )
    # Every transfer the same at both ends, once each, and the units where they say.
    assert_transfers_atomic(world)
    committed = [tid for tid, status in statuses.items() if status == "COMMITTED"]
    # transfer_records refuses two records of one transfer; a committed one is at both.
    at_receiver = {tid for tid, _ in transfer_records(world, RECEIVER)}
    assert set(committed) <= at_receiver
    assert holdings(world, RECEIVER, receiver_account) == len(committed)
    assert holdings(world, SENDER, sender_account) == STREAM_TOTAL - len(committed)
    assert_federation_invariants(world)


def test_two_brokers_down_stop_transfers_until_one_returns(cluster: Cluster, world: World) -> None:
    sender_account, receiver_account = _accounts(world, "QUORUM", 5)
    survivor, *down = (1, 2, 3)
    for node_id in down:
        cluster.kill(node_id)
    try:
        transfer_id = _post(world, sender_account, receiver_account)
        deadline = time.monotonic() + OUTAGE_OBSERVATION_S
        while time.monotonic() < deadline:
            view = transfer_view(world, SENDER, transfer_id)
            assert view is not None
            assert view["status"] == "PENDING", view
            theirs = transfer_view(world, RECEIVER, transfer_id)
            assert theirs is None or theirs["status"] == "PENDING", theirs
            time.sleep(OUTAGE_POLL_S)
        assert holdings(world, RECEIVER, receiver_account) == 0
    finally:
        cluster.start(down[0])
    at_sender = wait_status(world, SENDER, transfer_id, timeout_s=SETTLE_TIMEOUT_S, completed=True)
    at_receiver = wait_status(world, RECEIVER, transfer_id, timeout_s=SETTLE_TIMEOUT_S)
    assert at_sender["status"] == at_receiver["status"] == "COMMITTED"
    assert holdings(world, RECEIVER, receiver_account) == 1
    cluster.start(down[1])
    assert survivor == 1
    assert_transfers_atomic(world)
    assert_federation_invariants(world)
