"""``GET /v1/health`` needs no token and reports whether the database answers."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from a6wire.directory import FederationDirectory, FederationMember
from a6wire.keys import generate_private_key, public_key_base64, save_private_key_pem
from a6wire.topics import inbox_topic
from registry.adapters.messaging import MESSAGING_TABLES, Outbox
from registry.adapters.messaging.outbox import utc_now
from registry.bootstrap import Node, build_node
from registry.entrypoints.api import create_app
from registry.settings import load_settings
from tests.integration.api.conftest import OPERATOR_TOKEN

pytestmark = pytest.mark.integration


def test_health_needs_no_token_and_reaches_the_database(anonymous: TestClient) -> None:
    response = anonymous.get("/v1/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "party": "THA",
        "registry_id": "THA01",
        "database_reachable": True,
        "reasons": [],
        "oldest_unsent_outbox_age_s": 0.0,
        # An API-only node holds no federation directory.
        "directory_version": None,
    }


def test_health_reports_an_unreachable_database(tmp_path: Path) -> None:
    # Port 1 on loopback refuses connections at once: a database that is down.
    settings = load_settings(
        party="THA",
        registry_id="THA01",
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/absent",
        data_dir=tmp_path,
        operator_tokens=[OPERATOR_TOKEN],
    )
    node = build_node(settings, migrate=False)
    with TestClient(create_app(node)) as client:
        response = client.get("/v1/health")
    node.close()
    assert response.status_code == 503
    assert response.json()["database_reachable"] is False
    assert response.json()["reasons"] == ["database: unreachable"]


def test_health_reports_a_node_not_connected_to_its_broker(tmp_path: Path) -> None:
    """The API serves while the edge retries; stopping the node mid-retry is clean."""
    key = generate_private_key()
    key_path = tmp_path / "node.pem"
    save_private_key_pem(key, key_path)
    directory_path = tmp_path / "directory.json"
    member = FederationMember(
        party="THA",
        registry_id="THA01",
        public_key_base64=public_key_base64(key),
        inbox_topic=inbox_topic("THA"),
    )
    directory_path.write_text(FederationDirectory(members=(member,)).model_dump_json())
    settings = load_settings(
        party="THA",
        registry_id="THA01",
        data_dir=tmp_path,
        operator_tokens=[OPERATOR_TOKEN],
        key_path=key_path,
        directory_path=directory_path,
        # Port 1 on loopback refuses connections at once: a broker that is down.
        kafka_bootstrap_servers="127.0.0.1:1",
    )
    node = build_node(settings)
    try:
        with TestClient(create_app(node)) as client:
            response = client.get("/v1/health")
    finally:
        node.close()
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["database_reachable"] is True
    assert response.json()["reasons"] == ["messaging: not connected to the broker"]


def _outbox_row_written(node: Node, age: timedelta) -> None:
    outbox = Outbox(MESSAGING_TABLES.outbox, clock=lambda: utc_now() - age)
    with node.engine.begin() as connection:
        outbox.add(connection, "a6.node.CHE.inbox", "transfer-1", b"vote")


def test_health_is_degraded_while_the_oldest_unsent_outbox_row_is_older_than_its_bound(
    node: Node, anonymous: TestClient
) -> None:
    bound_s = node.settings.outbox_stall_degraded_after_s
    # A row waiting less than the bound is normal traffic.
    _outbox_row_written(node, timedelta(seconds=bound_s / 2))
    fresh = anonymous.get("/v1/health").json()
    assert fresh["status"] == "ok"
    assert fresh["reasons"] == []

    _outbox_row_written(node, timedelta(seconds=bound_s * 10))
    stalled = anonymous.get("/v1/health")
    # Degraded, not down: the node still serves its own API.
    assert stalled.status_code == 200
    body = stalled.json()
    assert body["status"] == "degraded"
    assert body["database_reachable"] is True
    assert body["oldest_unsent_outbox_age_s"] >= bound_s * 10
    [reason] = body["reasons"]
    assert reason.startswith("outbox: the oldest unsent row has waited")

    # Once the relay has published it, health is ok again.
    outbox_table = MESSAGING_TABLES.outbox
    with node.engine.begin() as connection:
        connection.execute(update(outbox_table).values(sent_at=utc_now()))
    recovered = anonymous.get("/v1/health").json()
    assert recovered["status"] == "ok"
    assert recovered["oldest_unsent_outbox_age_s"] == 0.0


def test_openapi_docs_are_served(anonymous: TestClient) -> None:
    assert anonymous.get("/docs").status_code == 200
    paths = anonymous.get("/openapi.json").json()["paths"]
    assert "/v1/health" in paths


def test_unknown_route_and_method_use_the_error_body(anonymous: TestClient) -> None:
    missing = anonymous.get("/v1/no-such-thing")
    assert missing.status_code == 404
    assert missing.json()["reason"] == "NOT_FOUND"
    wrong_method = anonymous.delete("/v1/health")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["reason"] == "METHOD_NOT_ALLOWED"


def test_every_answer_carries_a_request_id(anonymous: TestClient) -> None:
    first = anonymous.get("/v1/health").headers["x-request-id"]
    second = anonymous.get("/v1/no-such-thing").headers["x-request-id"]
    assert first != second
