"""Idempotency-Key: a repeat returns the first answer and runs nothing twice."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from registry.entrypoints.api.idempotency import (
    Claimed,
    ClaimOutcome,
    IdempotencyMiddleware,
    KeyedRequest,
    KeyReused,
    Replay,
    StoredResponse,
)
from registry.settings import load_settings
from tests.integration.api.conftest import (
    AUDITOR_TOKEN,
    HOLDING_ACCOUNT,
    OPERATOR_TOKEN,
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


class _DictStore:
    """The store contract in a dict: enough to drive the middleware on its own."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], tuple[str, StoredResponse]] = {}

    def claim(self, request: KeyedRequest) -> ClaimOutcome:
        found = self.answers.get((request.principal, request.key))
        if found is None:
            return Claimed()
        fingerprint, response = found
        return Replay(response) if fingerprint == request.fingerprint else KeyReused()

    def finish(self, request: KeyedRequest, response: StoredResponse) -> None:
        self.answers[(request.principal, request.key)] = (request.fingerprint, response)

    def abandon(self, request: KeyedRequest) -> None:
        pass


async def test_a_repeat_while_the_first_runs_is_refused_not_run() -> None:
    started, release = anyio.Event(), anyio.Event()
    runs: list[int] = []

    async def slow_app(scope: Any, receive: Any, send: Any) -> None:
        runs.append(1)
        started.set()
        await release.wait()
        await JSONResponse({"done": True}, status_code=201)(scope, receive, send)

    settings = load_settings(party="THA", registry_id="THA01", operator_tokens=[OPERATOR_TOKEN])
    middleware = IdempotencyMiddleware(slow_app, settings, _DictStore())
    headers = {"Authorization": f"Bearer {OPERATOR_TOKEN}", "Idempotency-Key": "slow-1"}
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        answers: list[httpx.Response] = []

        async def first_request() -> None:
            answers.append(await client.post("/v1/issuances", json={}, headers=headers))

        async with anyio.create_task_group() as group:
            group.start_soon(first_request)
            await started.wait()
            repeat = await client.post("/v1/issuances", json={}, headers=headers)
            release.set()
        replay = await client.post("/v1/issuances", json={}, headers=headers)
    refused(repeat, 409, "IDEMPOTENCY_KEY_IN_PROGRESS")
    assert answers[0].status_code == 201
    assert (replay.status_code, replay.json()) == (201, {"done": True})
    assert len(runs) == 1
