"""Registry freeze, cooperative approaches and Letters of Authorisation."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.integration.api.conftest import (
    APPROACH_ID,
    HOLDING_ACCOUNT,
    LOA_ID,
    OTHER_ACCOUNT,
    approach_body,
    loa_body,
    ok,
    refused,
)


def test_registry_identity_comes_from_settings(operator: TestClient) -> None:
    assert ok(operator.get("/v1/registry")) == {
        "party": "THA",
        "registry_id": "THA01",
        "transfers_frozen": False,
        "freeze_reason": "",
    }


def test_freeze_stops_transfers_until_unfrozen(
    issued: dict[str, object], ledger: TestClient
) -> None:
    frozen = ok(ledger.post("/v1/registry/freeze", json={"reason": "annual reconciliation"}))
    assert frozen["transfers_frozen"] is True
    transfer = {"from_account_id": HOLDING_ACCOUNT, "to_account_id": OTHER_ACCOUNT, "quantity": 10}
    refused(ledger.post("/v1/internal-transfers", json=transfer), 409, "REGISTRY_FROZEN")
    assert ok(ledger.post("/v1/registry/unfreeze"))["transfers_frozen"] is False
    assert ok(ledger.post("/v1/internal-transfers", json=transfer))["quantity"] == 10


def test_freeze_needs_a_reason(operator: TestClient) -> None:
    refused(operator.post("/v1/registry/freeze", json={}), 422, "MALFORMED_REQUEST")


def test_register_list_and_get_an_approach(operator: TestClient) -> None:
    created = ok(operator.post("/v1/cooperative-approaches", json=approach_body()), 201)
    assert created["participating_parties"] == ["CHE", "THA"]
    assert [
        a["cooperative_approach_id"] for a in ok(operator.get("/v1/cooperative-approaches"))
    ] == [APPROACH_ID]
    assert ok(operator.get(f"/v1/cooperative-approaches/{APPROACH_ID}")) == created
    refused(operator.get("/v1/cooperative-approaches/CA0999"), 404, "UNKNOWN_COOPERATIVE_APPROACH")
    refused(
        operator.post("/v1/cooperative-approaches", json=approach_body()),
        409,
        "COOPERATIVE_APPROACH_EXISTS",
    )


def test_an_approach_without_this_party_is_refused(operator: TestClient) -> None:
    body = approach_body(participating_parties=["CHE", "GHA"])
    refused(
        operator.post("/v1/cooperative-approaches", json=body),
        409,
        "PARTY_NOT_IN_COOPERATIVE_APPROACH",
    )


def test_an_approach_with_an_impossible_omge_share_is_unprocessable(operator: TestClient) -> None:
    body = approach_body(omge_share="1.5")
    refused(operator.post("/v1/cooperative-approaches", json=body), 422, "INVALID_OMGE_SHARE")


def test_loa_versions_and_revocation(operator: TestClient) -> None:
    ok(operator.post("/v1/cooperative-approaches", json=approach_body()), 201)
    first = ok(operator.post("/v1/authorisations", json=loa_body()), 201)
    assert (first["version"], first["authorising_party"], first["revoked"]) == (1, "THA", False)

    change = loa_body(quantity_cap=5000, version=2)
    del change["authorisation_id"]
    second = ok(operator.post(f"/v1/authorisations/{LOA_ID}/versions", json=change), 201)
    assert (second["version"], second["quantity_cap"]) == (2, 5000)
    # A stale version number means someone else changed the LoA meanwhile.
    refused(
        operator.post(f"/v1/authorisations/{LOA_ID}/versions", json=change),
        409,
        "AUTHORISATION_VERSION_CONFLICT",
    )

    revoked = ok(operator.post(f"/v1/authorisations/{LOA_ID}/revoke"))
    assert (revoked["version"], revoked["revoked"]) == (3, True)
    refused(operator.post(f"/v1/authorisations/{LOA_ID}/revoke"), 409, "AUTHORISATION_REVOKED")

    versions = ok(operator.get(f"/v1/authorisations/{LOA_ID}/versions"))
    assert [version["version"] for version in versions] == [1, 2, 3]
    assert ok(operator.get(f"/v1/authorisations/{LOA_ID}"))["revoked"] is True


def test_loa_for_an_unknown_approach_is_404(operator: TestClient) -> None:
    refused(
        operator.post("/v1/authorisations", json=loa_body()), 404, "UNKNOWN_COOPERATIVE_APPROACH"
    )


def test_loa_for_oimp_needs_a_first_transfer_definition(operator: TestClient) -> None:
    ok(operator.post("/v1/cooperative-approaches", json=approach_body()), 201)
    body = loa_body(oimp_first_transfer=None)
    refused(
        operator.post("/v1/authorisations", json=body), 422, "MISSING_FIRST_TRANSFER_DEFINITION"
    )


def test_unknown_loa_is_reported(operator: TestClient) -> None:
    refused(operator.get("/v1/authorisations/NOPE"), 404, "NO_AUTHORISATION")
    refused(operator.get("/v1/authorisations/NOPE/versions"), 404, "NO_AUTHORISATION")
    refused(operator.post("/v1/authorisations/NOPE/revoke"), 404, "NO_AUTHORISATION")
