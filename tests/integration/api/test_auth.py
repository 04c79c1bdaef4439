"""Roles: operator writes and reads, auditor reads, the public sees the transparency subset."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.integration.api.conftest import HOLDING_ACCOUNT, LOA_ID, refused

# (method, path) of endpoints only operators and auditors may read.
PRIVATE_READS = [
    "/v1/registry",
    "/v1/accounts",
    f"/v1/accounts/{HOLDING_ACCOUNT}",
    f"/v1/accounts/{HOLDING_ACCOUNT}/holdings",
    "/v1/cooperative-approaches",
    "/v1/audit?first_identifier=CA0001-THA01-THA-000000001-2025",
]
PUBLIC_READS = [
    "/v1/holdings/totals",
    "/v1/ca-ledger",
    f"/v1/authorisations/{LOA_ID}",
    f"/v1/authorisations/{LOA_ID}/versions",
    "/v1/health",
    "/v1/unit-index",
    "/v1/reconciliation",
]
WRITES = [
    ("/v1/accounts", {"account_id": "THA-NEW-1"}),
    (f"/v1/accounts/{HOLDING_ACCOUNT}/suspend", None),
    ("/v1/registry/freeze", {"reason": "test"}),
    ("/v1/registry/unfreeze", None),
    ("/v1/issuances", {"account_id": HOLDING_ACCOUNT, "lines": []}),
    ("/v1/internal-transfers", {}),
    ("/v1/uses", {}),
    ("/v1/cancellations", {}),
    ("/v1/cooperative-approaches", {}),
    ("/v1/authorisations", {}),
    (f"/v1/authorisations/{LOA_ID}/revoke", None),
]


@pytest.mark.parametrize("path", PRIVATE_READS)
def test_private_reads_need_a_token(anonymous: TestClient, path: str) -> None:
    response = anonymous.get(path)
    refused(response, 401, "UNAUTHENTICATED")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("path", "body"), WRITES)
def test_writes_need_a_token(anonymous: TestClient, path: str, body: object) -> None:
    refused(anonymous.post(path, json=body), 401, "UNAUTHENTICATED")


@pytest.mark.parametrize(("path", "body"), WRITES)
def test_auditors_cannot_write(auditor: TestClient, path: str, body: object) -> None:
    refused(auditor.post(path, json=body), 403, "FORBIDDEN")


def test_auditors_read_everything(ledger: TestClient, auditor: TestClient) -> None:
    for path in PRIVATE_READS + PUBLIC_READS:
        assert auditor.get(path).status_code == 200, path


def test_the_public_reads_the_transparency_subset(
    ledger: TestClient, anonymous: TestClient
) -> None:
    for path in PUBLIC_READS:
        response = anonymous.get(path)
        assert response.status_code == 200, (path, response.text)
    assert "account_id" not in anonymous.get("/v1/holdings/totals").text


def test_an_unknown_token_is_refused_even_on_public_endpoints(anonymous: TestClient) -> None:
    headers = {"Authorization": "Bearer not-a-token-this-node-knows"}
    refused(anonymous.get("/v1/ca-ledger", headers=headers), 401, "UNAUTHENTICATED")
    refused(anonymous.get("/v1/accounts", headers=headers), 401, "UNAUTHENTICATED")


def test_a_non_bearer_scheme_is_refused(anonymous: TestClient) -> None:
    headers = {"Authorization": "Basic dXNlcjpwYXNz"}
    refused(anonymous.get("/v1/accounts", headers=headers), 401, "UNAUTHENTICATED")
