"""A node whose broker is not there yet serves its API, reports itself degraded,
keeps transfers in its outbox, and connects without a restart once the broker is up.

Two nodes (the real composition under TestClient, as in ``test_two_nodes``) start
against a port where no broker runs; the test then starts a real broker on that
port and watches both nodes connect and a transfer started during the outage commit.
The port is this test's own, below the ephemeral range, never 9092 or 19092.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import pytest
from deploy.federation.launcher import free_ports
from fastapi.testclient import TestClient

from a6wire.directory import FederationDirectory, FederationMember
from a6wire.keys import generate_private_key, public_key_base64, save_private_key_pem
from a6wire.topics import inbox_topic
from registry.application.commands import (
    IssueUnits,
    OpenAccount,
    RecordAuthorisation,
    RegisterCooperativeApproach,
)
from registry.bootstrap import build_node, build_transfers
from registry.entrypoints.api import create_app
from registry.entrypoints.api.routes.health import MESSAGING_NOT_CONNECTED
from registry.settings import load_settings
from tests.conftest import _broker_script
from tests.integration.messaging.support import UniqueNames
from tests.integration.transfers.test_two_nodes import (
    OPERATOR_TOKEN,
    RECEIVER_ACCOUNT,
    SENDER_ACCOUNT,
    RunningNode,
)
from tests.unit.application.support import (
    PARTNER,
    PARTNER_REGISTRY_ID,
    PARTY,
    REGISTRY_ID,
    approach,
    authorisation,
    line,
)

# From the broker's start to both nodes answering ok: the edges' backoff is capped at
# EDGE_START_BACKOFF_MAX_S, so this is that cap plus a cold consumer-group join.
CONNECT_WAIT_S = 90.0
POLL_INTERVAL_S = 0.2
# Longer than CONNECT_WAIT_S plus a commit, so the deadline cannot abort the transfer.
TRANSFER_DEADLINE_S = 600
# Ports probed for a broker port whose controller port (the next one) is free too.
BROKER_PORT_PROBES_MAX = 20


def _broker_port() -> int:
    """A free port P below the ephemeral range with P + 1 (KRaft's controller) free too."""
    for _ in range(BROKER_PORT_PROBES_MAX):
        port = free_ports("127.0.0.1", 1)[0]
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("no free pair of ports for the test broker")


@pytest.fixture
def late_broker(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A port and data directory for a broker this test starts itself (stopped at the end)."""
    port, data_dir = _broker_port(), tmp_path / "kafka"
    try:
        yield port, data_dir
    finally:
        _broker_script().stop_broker(port=port, data_dir=data_dir)


@pytest.fixture
def nodes_before_the_broker(
    late_broker: tuple[int, Path], tmp_path: Path
) -> Iterator[dict[str, RunningNode]]:
    port, _ = late_broker
    bootstrap = f"127.0.0.1:{port}"
    names = UniqueNames(f"test.{uuid.uuid4().hex[:12]}")
    parties = {PARTY: REGISTRY_ID, PARTNER: PARTNER_REGISTRY_ID}
    keys = {party: generate_private_key() for party in parties}
    directory = FederationDirectory(
        members=tuple(
            FederationMember(
                party=party,
                registry_id=registry_id,
                public_key_base64=public_key_base64(keys[party]),
                inbox_topic=inbox_topic(party),
            )
            for party, registry_id in parties.items()
        )
    )
    directory_path = tmp_path / "directory.json"
    directory_path.write_text(directory.model_dump_json())
    running: dict[str, RunningNode] = {}
    with ExitStack() as stack:
        for party, registry_id in parties.items():
            (tmp_path / party).mkdir()
            key_path = tmp_path / party / "node.pem"
            save_private_key_pem(keys[party], key_path)
            settings = load_settings(
                party=party,
                registry_id=registry_id,
                database_url=f"sqlite:///{tmp_path / party / 'registry.sqlite3'}",
                data_dir=tmp_path / party,
                operator_tokens=[OPERATOR_TOKEN],
                key_path=key_path,
                directory_path=directory_path,
                kafka_bootstrap_servers=bootstrap,
            )
            base = build_node(settings, migrate=True)
            stack.callback(base.close)
            transfers, messaging = build_transfers(
                settings,
                base.engine,
                base.clock,
                messaging_config=names.config(party, bootstrap, decision_partitions=1),
                inbox_topic_of=lambda p: names.topic(f"node.{p}.inbox"),
            )
            node = replace(base, transfers=transfers, messaging=messaging)
            client = TestClient(
                create_app(node), headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}
            )
            # Before the fix, entering the client (the lifespan) failed here.
            stack.enter_context(client)
            running[party] = RunningNode(node, client)
        sender, receiver = running[PARTY], running[PARTNER]
        sender.ledger().run(RegisterCooperativeApproach(approach()))
        sender.ledger().run(RecordAuthorisation(authorisation()))
        sender.ledger().run(OpenAccount(SENDER_ACCOUNT))
        receiver.ledger().run(RegisterCooperativeApproach(approach()))
        receiver.ledger().run(OpenAccount(RECEIVER_ACCOUNT))
        sender.ledger().run(IssueUnits(SENDER_ACCOUNT, (line(100),)))
        yield running


def _wait_healthy(node: RunningNode) -> None:
    deadline = time.monotonic() + CONNECT_WAIT_S
    while True:
        response = node.client.get("/v1/health")
        if response.json()["status"] == "ok":
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{node.node.settings.party} never connected: {response.text}")
        time.sleep(POLL_INTERVAL_S)


def test_a_node_started_before_its_broker_connects_later_and_commits(
    nodes_before_the_broker: dict[str, RunningNode], late_broker: tuple[int, Path]
) -> None:
    sender, receiver = nodes_before_the_broker[PARTY], nodes_before_the_broker[PARTNER]
    for node in (sender, receiver):
        health = node.client.get("/v1/health")
        assert health.status_code == 200, health.text
        assert health.json()["status"] == "degraded"
        assert health.json()["reasons"] == [MESSAGING_NOT_CONNECTED]
        assert health.json()["database_reachable"] is True

    # Accepted and recorded while the broker is away: the outbox holds the PREPARE.
    response = sender.client.post(
        "/v1/transfers",
        json={
            "from_account_id": SENDER_ACCOUNT,
            "to_party": PARTNER,
            "to_account_id": RECEIVER_ACCOUNT,
            "quantity": 40,
            "authorisation_id": "LOA-CHE-1",
            "purpose": "NDC",
            # Past the default 30 s: the broker's start and the edges' backoff come first.
            "deadline_s": TRANSFER_DEADLINE_S,
        },
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text
    transfer_id = response.json()["transfer_id"]
    assert sender.transfer(transfer_id)["status"] == "PENDING"

    port, data_dir = late_broker
    _broker_script().start_broker(port=port, data_dir=data_dir)

    for node in (sender, receiver):
        _wait_healthy(node)
        assert node.client.get("/v1/health").json()["reasons"] == []
    final = sender.wait_final(transfer_id, completed=True)
    assert final["status"] == "COMMITTED", (final["reasons"], final)
    assert receiver.wait_final(transfer_id)["status"] == "COMMITTED"
    assert sender.ledger().held(SENDER_ACCOUNT) == 60
    assert receiver.ledger().held(RECEIVER_ACCOUNT) == 40
