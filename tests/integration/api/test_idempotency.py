"""Idempotency-Key: a repeat returns the first answer and runs nothing twice."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from tests.integration.api.conftest import (
    AUDITOR_TOKEN,
    HOLDING_ACCOUNT,
    issuance_body,
    ok,
    refused,
)


def _holding(client: TestClient) -> int:
    return int(ok(client.get(f"/v1/accounts/{HOLDING_ACCOUNT}/holdings"))["total_quantity"])


def test_a_repeat_replays_the_first_answer_without_a_second_issuance(ledger: TestClient) -> None:
    headers = {"Idempotency-Key": "issue-2025-001"}
    first = ledger.post("/v1/issuances", json=issuance_body(500), headers=headers)
    second = ledger.post("/v1/issuances", json=issuance_body(500), headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert _holding(ledger) == 500


def test_key_order_and_spacing_do_not_make_a_different_body(ledger: TestClient) -> None:
    headers = {"Idempotency-Key": "issue-2025-002", "Content-Type": "application/json"}
    ok(ledger.post("/v1/issuances", json=issuance_body(7), headers=headers), 201)
    body = issuance_body(7)
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=4)
    replay = ledger.post("/v1/issuances", content=reordered, headers=headers)
    assert replay.status_code == 201, replay.text
    assert _holding(ledger) == 7


def test_the_same_key_with_another_body_is_refused(ledger: TestClient) -> None:
    headers = {"Idempotency-Key": "issue-2025-003"}
    ok(ledger.post("/v1/issuances", json=issuance_body(10), headers=headers), 201)
    response = ledger.post("/v1/issuances", json=issuance_body(11), headers=headers)
    refused(response, 409, "IDEMPOTENCY_KEY_REUSED")
    assert _holding(ledger) == 10


def test_the_same_key_on_another_endpoint_is_refused(ledger: TestClient) -> None:
    headers = {"Idempotency-Key": "shared-key"}
    ok(ledger.post("/v1/accounts", json={"account_id": "THA-X-1"}, headers=headers), 201)
    refused(
        ledger.post("/v1/registry/freeze", json={"reason": "x"}, headers=headers),
        409,
        "IDEMPOTENCY_KEY_REUSED",
    )


def test_a_refusal_is_replayed_too(ledger: TestClient) -> None:
    headers = {"Idempotency-Key": "dup-account"}
    ok(ledger.post("/v1/accounts", json={"account_id": "THA-X-2"}), 201)
    first = ledger.post("/v1/accounts", json={"account_id": "THA-X-2"}, headers=headers)
    refused(first, 409, "ACCOUNT_EXISTS")
    # Even after the cause is gone the answer stays: the key names one attempt.
    ok(ledger.post("/v1/accounts/THA-X-2/close"))
    second = ledger.post("/v1/accounts", json={"account_id": "THA-X-2"}, headers=headers)
    assert (second.status_code, second.json()) == (409, first.json())


def test_without_a_key_each_request_runs(ledger: TestClient) -> None:
    ok(ledger.post("/v1/issuances", json=issuance_body(3)), 201)
    ok(ledger.post("/v1/issuances", json=issuance_body(3)), 201)
    assert _holding(ledger) == 6


def test_malformed_keys_are_refused(ledger: TestClient) -> None:
    for key in ["has space", "x" * 201, "tab\there"]:
        response = ledger.post(
            "/v1/accounts", json={"account_id": "THA-K-1"}, headers={"Idempotency-Key": key}
        )
        refused(response, 422, "MALFORMED_REQUEST")


def test_keys_are_scoped_to_a_token_and_never_replayed_to_other_roles(
    ledger: TestClient, anonymous: TestClient
) -> None:
    headers = {"Idempotency-Key": "scoped"}
    ok(ledger.post("/v1/accounts", json={"account_id": "THA-S-1"}, headers=headers), 201)
    refused(
        anonymous.post("/v1/accounts", json={"account_id": "THA-S-1"}, headers=headers),
        401,
        "UNAUTHENTICATED",
    )
    auditor_headers = {**headers, "Authorization": f"Bearer {AUDITOR_TOKEN}"}
    refused(
        anonymous.post("/v1/accounts", json={"account_id": "THA-S-1"}, headers=auditor_headers),
        403,
        "FORBIDDEN",
    )


def test_reads_ignore_the_key(ledger: TestClient) -> None:
    answer: Any = ok(ledger.get("/v1/accounts", headers={"Idempotency-Key": "read"}))
    assert isinstance(answer, list)
