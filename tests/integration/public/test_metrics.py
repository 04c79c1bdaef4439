"""``GET /metrics``: the exposition parses, and its numbers follow what the node does."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from registry.adapters.messaging import MESSAGING_TABLES, Outbox, PartitionLag
from registry.adapters.messaging.outbox import utc_now
from registry.application import handlers
from registry.application.commands import ReleaseOutgoingReservation, ReserveForTransfer
from registry.bootstrap import Node
from registry.domain.authorisations import Purpose
from registry.domain.selection import QuantitySelection
from registry.entrypoints.api import create_app
from registry.entrypoints.metrics import Metrics
from tests.integration.api.conftest import (
    HOLDING_ACCOUNT,
    PARTNER_PARTY,
    approach_body,
    issuance_body,
    loa_body,
    ok,
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_http_requests_are_counted_by_route_template(anonymous: TestClient) -> None:
    before = scrape(anonymous)
    for _ in range(3):
        anonymous.get("/public")
    anonymous.get("/v1/authorisations/LOA-UNKNOWN")
    anonymous.get("/no/such/path/at-all")
    after = scrape(anonymous)

    def delta(**labels: str) -> float:
        name = "registry_http_requests_total"
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta(method="GET", route="/public", status="200") == 3
    assert delta(method="GET", route="/v1/authorisations/{authorisation_id}", status="404") == 1
    assert delta(method="GET", route="unmatched", status="404") == 1
    assert not any("LOA-UNKNOWN" in str(labels) for _, labels in after)


def test_finished_transfers_and_commit_latency_are_reported_by_the_wiring(
    app: FastAPI, anonymous: TestClient
) -> None:
    metrics: Metrics = app.state.metrics
    metrics.transfer_finished("COORDINATOR", "COMMITTED", 0.3)
    metrics.transfer_finished("PARTICIPANT", "ABORTED", 1.0)
    samples = scrape(anonymous)
    finished = "registry_transfers_finished_total"
    assert value(samples, finished, role="COORDINATOR", outcome="COMMITTED") == 1
    assert value(samples, finished, role="PARTICIPANT", outcome="ABORTED") == 1
    assert value(samples, finished, role="COORDINATOR", outcome="ABORTED") == 0
    latency = "registry_transfer_commit_latency_seconds"
    assert value(samples, f"{latency}_count", role="COORDINATOR") == 1
    assert value(samples, f"{latency}_bucket", role="COORDINATOR", le="0.25") == 0
    assert value(samples, f"{latency}_bucket", role="COORDINATOR", le="0.5") == 1
    # Aborts are not commits: the participant's latency histogram stays empty.
    assert value(samples, f"{latency}_count", role="PARTICIPANT") == 0


def test_transfer_states_are_read_from_the_ledger_at_scrape_time(
    node: Node, operator: TestClient, anonymous: TestClient
) -> None:
    ok(operator.post("/v1/cooperative-approaches", json=approach_body()), 201)
    ok(operator.post("/v1/authorisations", json=loa_body()), 201)
    ok(operator.post("/v1/accounts", json={"account_id": HOLDING_ACCOUNT, "name": "THA"}), 201)
    ok(operator.post("/v1/issuances", json=issuance_body(100)), 201)
    gauge = "registry_transfers"
    assert value(scrape(anonymous), gauge, role="COORDINATOR", status="PENDING") == 0

    reserve = ReserveForTransfer(
        transfer_id="T-metrics-1",
        from_account_id=HOLDING_ACCOUNT,
        selection=QuantitySelection(quantity=10),
        acquiring_party=PARTNER_PARTY,
        purpose=Purpose.NDC,
    )
    handlers.reserve_for_transfer(node.unit_of_work(), node.clock, reserve)
    assert value(scrape(anonymous), gauge, role="COORDINATOR", status="PENDING") == 1

    release = ReleaseOutgoingReservation(transfer_id="T-metrics-1")
    handlers.release_outgoing_reservation(node.unit_of_work(), node.clock, release)
    samples = scrape(anonymous)
    assert value(samples, gauge, role="COORDINATOR", status="PENDING") == 0
    assert value(samples, gauge, role="COORDINATOR", status="ABORTED") == 1
    assert value(samples, "registry_metrics_database_up") == 1


def test_outbox_backlog_counts_unsent_rows(node: Node, anonymous: TestClient) -> None:
    assert value(scrape(anonymous), "registry_outbox_unsent_rows") == 0
    outbox = Outbox(MESSAGING_TABLES.outbox)
    with node.engine.begin() as connection:
        for index in range(2):
            outbox.add(connection, "a6.inbox.CHE", f"key-{index}", b"payload")
    assert value(scrape(anonymous), "registry_outbox_unsent_rows") == 2


def test_outbox_oldest_unsent_age_is_a_gauge(node: Node, anonymous: TestClient) -> None:
    gauge = "registry_outbox_oldest_unsent_age_seconds"
    samples = scrape(anonymous)
    assert (gauge, frozenset()) in samples
    assert value(samples, gauge) == 0
    ten_minutes_ago = utc_now() - timedelta(minutes=10)
    with node.engine.begin() as connection:
        Outbox(MESSAGING_TABLES.outbox, clock=lambda: ten_minutes_ago).add(
            connection, "a6.inbox.CHE", "key-old", b"payload"
        )
        Outbox(MESSAGING_TABLES.outbox).add(connection, "a6.inbox.CHE", "key-new", b"payload")
    # The oldest row counts, not the newest.
    assert value(scrape(anonymous), gauge) >= 600


def test_consumer_lag_comes_from_the_messaging_edge_when_it_runs(
    app: FastAPI, anonymous: TestClient
) -> None:
    metrics: Metrics = app.state.metrics
    lag = "registry_consumer_lag_records"
    assert not [key for key in scrape(anonymous) if key[0] == lag]

    async def two_partitions() -> list[PartitionLag]:
        return [
            PartitionLag("a6.inbox.THA", 0, end_offset=12, committed_offset=9),
            PartitionLag("a6.decisions", 3, end_offset=5, committed_offset=None),
        ]

    metrics.watch_messaging(two_partitions)
    samples = scrape(anonymous)
    assert value(samples, lag, topic="a6.inbox.THA", partition="0") == 3
    assert value(samples, lag, topic="a6.decisions", partition="3") == 5

    async def broker_down() -> list[PartitionLag]:
        raise ConnectionError("broker unreachable")

    metrics.watch_messaging(broker_down)
    # The scrape still answers; the lag series are absent rather than stale.
    assert not [key for key in scrape(anonymous) if key[0] == lag]


def test_two_apps_in_one_process_keep_their_own_registries(node: Node) -> None:
    with TestClient(create_app(node)) as first, TestClient(create_app(node)) as second:
        first.get("/public")
        first.get("/public")
        second.get("/public")
        requests = "registry_http_requests_total"
        labels = {"method": "GET", "route": "/public", "status": "200"}
        assert value(scrape(first), requests, **labels) == 2
        assert value(scrape(second), requests, **labels) == 1
