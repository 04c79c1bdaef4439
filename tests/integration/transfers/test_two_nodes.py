"""Two registry nodes in one pytest process, each with its own database, on the real broker.

Each node is the real composition (``build_node`` then ``build_transfers`` on
unique topic names) served by ``create_app`` under a TestClient, whose lifespan
starts the Kafka edge and the ticker exactly as ``registry-node serve`` does.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, func, select, text

from a6wire.directory import FederationDirectory, FederationMember
from a6wire.keys import generate_private_key, public_key_base64, save_private_key_pem
from a6wire.topics import inbox_topic
from registry.adapters.messaging import MESSAGING_TABLES
from registry.adapters.transfer_tables import protocol_transfers
from registry.application.commands import (
    IssueUnits,
    OpenAccount,
    RecordAuthorisation,
    RegisterCooperativeApproach,
)
from registry.bootstrap import Node, build_node, build_transfers
from registry.entrypoints.api import create_app
from registry.settings import load_settings
from tests.integration.messaging.support import UniqueNames
from tests.unit.application.support import (
    PARTNER,
    PARTNER_REGISTRY_ID,
    PARTY,
    REGISTRY_ID,
    Ledger,
    approach,
    authorisation,
    line,
)

OPERATOR_TOKEN = "operator-token-for-transfer-tests"
SENDER_ACCOUNT = "CHE-A"
RECEIVER_ACCOUNT = "GHA-A"
# A cold JVM broker needs several seconds for the first consumer-group join.
FINAL_WAIT_S = 60.0
POLL_INTERVAL_S = 0.2


@dataclass
class RunningNode:
    node: Node
    client: TestClient

    def ledger(self) -> Ledger:
        # The real node runs on its system clock; Ledger only reads time through it.
        return Ledger(self.node.unit_of_work(), self.node.clock)  # type: ignore[arg-type]

    def transfer(self, transfer_id: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/transfers/{transfer_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def wait_final(self, transfer_id: str, *, completed: bool = False) -> dict[str, Any]:
        deadline = time.monotonic() + FINAL_WAIT_S
        while True:
            response = self.client.get(f"/v1/transfers/{transfer_id}")
            if response.status_code == 200:
                body: dict[str, Any] = response.json()
                if body["status"] != "PENDING" and (body["completed"] or not completed):
                    return body
            if time.monotonic() > deadline:
                raise AssertionError(f"{transfer_id} not final: {response.text}")
            time.sleep(POLL_INTERVAL_S)


def _database_url(
    base: str, party: str, tmp_path: Path, request: pytest.FixtureRequest, stack: ExitStack
) -> str:
    """Each node its own database: a SQLite file, or a fresh PostgreSQL database."""
    if base.startswith("sqlite"):
        return f"sqlite:///{tmp_path / party / 'registry.sqlite3'}"
    admin: Engine = request.getfixturevalue("postgres_admin_engine")
    name = f"t_{uuid.uuid4().hex}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    stack.callback(drop)
    return admin.url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture
def federation(
    kafka_bootstrap: str, database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[dict[str, RunningNode]]:
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
                database_url=_database_url(database_url, party, tmp_path, request, stack),
                data_dir=tmp_path / party,
                operator_tokens=[OPERATOR_TOKEN],
                key_path=key_path,
                directory_path=directory_path,
            )
            base = build_node(settings, migrate=True)
            stack.callback(base.close)
            transfers, messaging = build_transfers(
                settings,
                base.engine,
                base.clock,
                messaging_config=names.config(party, kafka_bootstrap, decision_partitions=1),
                inbox_topic_of=lambda p: names.topic(f"node.{p}.inbox"),
            )
            node = replace(base, transfers=transfers, messaging=messaging)
            client = TestClient(
                create_app(node), headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}
            )
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


def _body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "from_account_id": SENDER_ACCOUNT,
        "to_party": PARTNER,
        "to_account_id": RECEIVER_ACCOUNT,
        "quantity": 40,
        "authorisation_id": "LOA-CHE-1",
        "purpose": "NDC",
    }
    body.update(overrides)
    return body


def test_a_first_transfer_commits_at_both_nodes(federation: dict[str, RunningNode]) -> None:
    sender, receiver = federation[PARTY], federation[PARTNER]
    response = sender.client.post(
        "/v1/transfers?wait_s=30",
        json=_body(),
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text
    transfer_id = response.json()["transfer_id"]
    assert sender.wait_final(transfer_id, completed=True)["status"] == "COMMITTED"
    at_receiver = receiver.wait_final(transfer_id)
    assert at_receiver["status"] == "COMMITTED"
    assert at_receiver["role"] == "PARTICIPANT"
    assert sender.ledger().held(SENDER_ACCOUNT) == 60
    assert receiver.ledger().held(RECEIVER_ACCOUNT) == 40
    listed = sender.client.get("/v1/transfers", params={"status": "COMMITTED"}).json()
    assert [item["transfer_id"] for item in listed["items"]] == [transfer_id]
    # Each node counted the outcome and timed it, in its own role.
    for node, role in ((sender, "COORDINATOR"), (receiver, "PARTICIPANT")):
        samples = _metric_samples(node)
        finished = {"role": role, "outcome": "COMMITTED"}
        assert samples[("registry_transfers_finished_total", _labels(finished))] == 1
        latency = ("registry_transfer_commit_latency_seconds_count", _labels({"role": role}))
        assert samples[latency] == 1


def _until(probe: Any, what: str) -> Any:
    deadline = time.monotonic() + FINAL_WAIT_S
    while (found := probe()) is None:
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(POLL_INTERVAL_S)
    return found


def test_each_index_follows_the_transfer_and_its_lag_is_in_metrics(
    federation: dict[str, RunningNode],
) -> None:
    """Both nodes fold the issuance and the COMMIT into their unit index (PROTOCOL.md
    invariant 8), serve it at /v1/unit-index, and report its lag in /metrics."""
    sender = federation[PARTY]
    response = sender.client.post("/v1/transfers?wait_s=30", json=_body())
    transfer_id = response.json()["transfer_id"]
    assert sender.wait_final(transfer_id, completed=True)["status"] == "COMMITTED"
    held = {
        party: [
            (block["first_serial"], block["last_serial"], party)
            for block in node.client.get(f"/v1/accounts/{account}/holdings").json()["blocks"]
        ]
        for (party, node), account in zip(
            federation.items(), (SENDER_ACCOUNT, RECEIVER_ACCOUNT), strict=True
        )
    }
    expected = sorted(held[PARTY] + held[PARTNER])
    assert sum(last - first + 1 for first, last, _ in held[PARTNER]) == 40
    for node in federation.values():

        def holders(node: RunningNode = node) -> list[tuple[int, int, str]] | None:
            found = [
                (segment["first_serial"], segment["last_serial"], segment["holder"])
                for segment in node.client.get("/v1/unit-index").json()
                if segment["originating_registry_id"] == REGISTRY_ID
            ]
            return found if found == expected else None

        _until(holders, f"{node.node.settings.party}'s index to show {expected}")

        def caught_up(node: RunningNode = node) -> dict[str, float] | None:
            lags = {
                dict(labels)["topic"] + "/" + dict(labels)["partition"]: value
                for (name, labels), value in _metric_samples(node).items()
                if name == "registry_unit_index_lag_records"
            }
            return lags if lags and not any(lags.values()) else None

        lags = _until(caught_up, "the unit index lag to reach 0")
        assert any(topic.startswith("a6.units/") for topic in lags), lags


def test_an_aborted_transfer_is_counted_and_not_timed_as_a_commit(
    federation: dict[str, RunningNode],
) -> None:
    sender = federation[PARTY]
    response = sender.client.post("/v1/transfers", json=_body(to_account_id="GHA-NOPE"))
    transfer_id = response.json()["transfer_id"]
    assert sender.wait_final(transfer_id)["status"] == "ABORTED"
    samples = _metric_samples(sender)
    aborted = {"role": "COORDINATOR", "outcome": "ABORTED"}
    assert samples[("registry_transfers_finished_total", _labels(aborted))] == 1
    latency = ("registry_transfer_commit_latency_seconds_count", _labels({"role": "COORDINATOR"}))
    assert samples.get(latency, 0) == 0


def _labels(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def _metric_samples(node: RunningNode) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = node.client.get("/metrics")
    assert response.status_code == 200, response.text
    return {
        (sample.name, _labels(sample.labels)): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_a_refusal_by_the_receiver_aborts_at_both_and_releases(
    federation: dict[str, RunningNode],
) -> None:
    sender, receiver = federation[PARTY], federation[PARTNER]
    response = sender.client.post("/v1/transfers", json=_body(to_account_id="GHA-NOPE"))
    assert response.status_code == 202, response.text
    transfer_id = response.json()["transfer_id"]
    final = sender.wait_final(transfer_id)
    assert final["status"] == "ABORTED"
    assert "UNKNOWN_ACCOUNT" in final["reasons"]
    assert receiver.wait_final(transfer_id)["status"] == "ABORTED"
    assert sender.ledger().held(SENDER_ACCOUNT) == 100


def test_a_refusal_by_the_senders_own_ledger_is_a_409_and_recorded(
    federation: dict[str, RunningNode],
) -> None:
    sender = federation[PARTY]
    response = sender.client.post("/v1/transfers", json=_body(quantity=1_000))
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["reason"] == "INSUFFICIENT_UNITS"
    assert sender.transfer(body["transfer_id"])["status"] == "ABORTED"


def test_a_duplicate_prepare_replayed_onto_the_inbox_changes_nothing(
    federation: dict[str, RunningNode],
) -> None:
    sender, receiver = federation[PARTY], federation[PARTNER]
    response = sender.client.post("/v1/transfers?wait_s=30", json=_body(quantity=10))
    transfer_id = response.json()["transfer_id"]
    sender.wait_final(transfer_id, completed=True)
    receiver.wait_final(transfer_id)
    outbox = MESSAGING_TABLES.outbox
    with sender.node.engine.connect() as connection:
        row = connection.execute(
            select(outbox.c.topic, outbox.c.key, outbox.c.value, outbox.c.headers)
            .where(outbox.c.headers["message_type"].as_string() == "PREPARE")
            .order_by(outbox.c.id)
        ).first()
    assert row is not None
    # Replayed by hand onto the receiver's inbox, through the sender's own (started) edge.
    edge = sender.client.app.state.edge  # type: ignore[attr-defined]
    publish = functools.partial(
        edge.broker.publish, bytes(row.value), row.topic, key=bytes(row.key)
    )
    sender.client.portal.call(publish)  # type: ignore[union-attr]
    # Give the receiver's consumer time to read (and drop) the copy.
    time.sleep(3)
    assert receiver.ledger().held(RECEIVER_ACCOUNT) == 10
    assert receiver.transfer(transfer_id)["status"] == "COMMITTED"
    with receiver.node.engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(protocol_transfers)).scalar()
    assert count == 1


def test_a_transfer_naming_the_second_loa_of_an_account_moves_only_its_units(
    federation: dict[str, RunningNode],
) -> None:
    sender, receiver = federation[PARTY], federation[PARTNER]
    # The account's oldest 100 units are under LOA-CHE-1; 30 newer ones under LOA-CHE-2.
    sender.ledger().run(RecordAuthorisation(authorisation(authorisation_id="LOA-CHE-2")))
    sender.ledger().run(IssueUnits(SENDER_ACCOUNT, (line(30, authorisation_id="LOA-CHE-2"),)))
    response = sender.client.post(
        "/v1/transfers?wait_s=30", json=_body(quantity=20, authorisation_id="LOA-CHE-2")
    )
    assert response.status_code == 202, response.text
    transfer_id = response.json()["transfer_id"]
    assert sender.wait_final(transfer_id, completed=True)["status"] == "COMMITTED"
    assert receiver.wait_final(transfer_id)["status"] == "COMMITTED"
    received = receiver.client.get(f"/v1/accounts/{RECEIVER_ACCOUNT}/holdings").json()
    assert received["total_quantity"] == 20
    assert {block["authorisation_id"] for block in received["blocks"]} == {"LOA-CHE-2"}
    assert sender.ledger().held(SENDER_ACCOUNT) == 110
