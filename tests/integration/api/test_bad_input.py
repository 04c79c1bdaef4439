"""Malformed input is a 4xx with the error body, never a 500 and never a handler call."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.integration.api.conftest import HOLDING_ACCOUNT, OTHER_ACCOUNT, issuance_body, refused

# (path, body, reason) for identifiers and quantities the API must refuse.
MALFORMED = [
    ("/v1/accounts", {"account_id": "lower-case"}, "MALFORMED_IDENTIFIER"),
    ("/v1/accounts", {"account_id": ""}, "MALFORMED_IDENTIFIER"),
    (
        "/v1/cooperative-approaches",
        {
            "cooperative_approach_id": "CA1",
            "participating_parties": ["THA", "CHE"],
            "vintage_from": 2021,
            "vintage_to": 2030,
            "in_force_from": "2021-01-01",
        },
        "MALFORMED_IDENTIFIER",
    ),
    (
        "/v1/cooperative-approaches",
        {
            "cooperative_approach_id": "CA0001",
            "participating_parties": ["THA", "Swiss"],
            "vintage_from": 2021,
            "vintage_to": 2030,
            "in_force_from": "2021-01-01",
        },
        "MALFORMED_IDENTIFIER",
    ),
    ("/v1/issuances", issuance_body(0), "NON_POSITIVE_QUANTITY"),
    ("/v1/issuances", issuance_body(-5), "NON_POSITIVE_QUANTITY"),
    ("/v1/issuances", issuance_body(10, cooperative_approach_id="XX0001"), "MALFORMED_IDENTIFIER"),
    ("/v1/issuances", issuance_body(10, vintage=1999), "MALFORMED_REQUEST"),
    (
        "/v1/internal-transfers",
        {"from_account_id": HOLDING_ACCOUNT, "to_account_id": OTHER_ACCOUNT, "quantity": 0},
        "NON_POSITIVE_QUANTITY",
    ),
    (
        "/v1/internal-transfers",
        {
            "from_account_id": HOLDING_ACCOUNT,
            "to_account_id": OTHER_ACCOUNT,
            "first_identifier": "CA0001-THA01-THA-1-2025",
            "last_identifier": "CA0001-THA01-THA-000000002-2025",
        },
        "MALFORMED_IDENTIFIER",
    ),
    (
        "/v1/internal-transfers",
        {
            "from_account_id": HOLDING_ACCOUNT,
            "to_account_id": OTHER_ACCOUNT,
            "first_identifier": "CA0001-THA01-THA-000000001-2025",
            "last_identifier": "CA0002-THA01-THA-000000002-2025",
        },
        "MALFORMED_REQUEST",
    ),
    (
        "/v1/internal-transfers",
        {"from_account_id": HOLDING_ACCOUNT, "to_account_id": OTHER_ACCOUNT},
        "MALFORMED_REQUEST",
    ),
    (
        "/v1/uses",
        {"account_id": HOLDING_ACCOUNT, "purpose": "BOTH", "quantity": 1},
        "MALFORMED_REQUEST",
    ),
    (
        "/v1/cancellations",
        {"account_id": HOLDING_ACCOUNT, "kind": "OMGE", "quantity": 1, "surprise": True},
        "MALFORMED_REQUEST",
    ),
]


@pytest.mark.parametrize(("path", "body", "reason"), MALFORMED)
def test_malformed_requests_are_422_with_a_reason(
    ledger: TestClient, path: str, body: dict[str, Any], reason: str
) -> None:
    refused(ledger.post(path, json=body), 422, reason)


def test_non_json_and_wrong_shapes_are_422(ledger: TestClient) -> None:
    headers = {"Content-Type": "application/json"}
    for raw in ["", "{", "[]", "null", '"text"', "42", '{"account_id": 42}']:
        response = ledger.post("/v1/accounts", content=raw, headers=headers)
        refused(response, 422, "MALFORMED_REQUEST")


def _mutations(body: Any, rng: random.Random) -> Any:
    """Replace values at random with values of the wrong type or shape."""
    weird: list[Any] = [None, -1, 0, 2**70, "", "🙂" * 3, [], {}, True, 1.5, "A" * 5000]
    if isinstance(body, dict):
        return {
            key: (rng.choice(weird) if rng.random() < 0.4 else _mutations(value, rng))
            for key, value in body.items()
        }
    if isinstance(body, list):
        return [_mutations(item, rng) for item in body] if body else [rng.choice(weird)]
    return body


FUZZ_ROUNDS_PER_ENDPOINT = 25


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/accounts", {"account_id": "THA-F-1", "kind": "HOLDING", "name": "x"}),
        ("/v1/issuances", issuance_body(10)),
        (
            "/v1/internal-transfers",
            {"from_account_id": HOLDING_ACCOUNT, "to_account_id": OTHER_ACCOUNT, "quantity": 1},
        ),
        (
            "/v1/uses",
            {"account_id": HOLDING_ACCOUNT, "purpose": "NDC", "year_of_use": 2026, "quantity": 1},
        ),
        ("/v1/cancellations", {"account_id": HOLDING_ACCOUNT, "kind": "OMGE", "quantity": 1}),
        ("/v1/registry/freeze", {"reason": "fuzz"}),
    ],
)
def test_fuzzed_bodies_never_cause_a_server_error(
    ledger: TestClient, path: str, body: dict[str, Any]
) -> None:
    rng = random.Random(f"{path}-seed")
    for _ in range(FUZZ_ROUNDS_PER_ENDPOINT):
        mutated = _mutations(body, rng)
        response = ledger.post(
            path, content=json.dumps(mutated), headers={"Content-Type": "application/json"}
        )
        assert response.status_code < 500, (mutated, response.text)
        if response.status_code >= 400:
            assert set(response.json()) == {"reason", "message"}, response.text


# -------------------------------------------------------- what the database cannot store

# 2**63: one past the largest serial a signed 64-bit column holds.
SERIAL_BEYOND_64_BITS = "9223372036854775808"


# 2**53: one past the largest integer RFC 8785 (the signed wire form) holds exactly.
SERIAL_BEYOND_JSON_SAFE = "9007199254740992"


@pytest.mark.parametrize(
    "serial",
    [SERIAL_BEYOND_JSON_SAFE, SERIAL_BEYOND_64_BITS, "99999999999999999999999999", "000000000"],
)
def test_an_identifier_with_a_serial_the_database_cannot_hold_is_422(
    ledger: TestClient, serial: str
) -> None:
    identifier = f"CA0001-THA01-THA-{serial}-2025"
    refused(
        ledger.get("/v1/audit", params={"first_identifier": identifier}),
        422,
        "MALFORMED_IDENTIFIER",
    )
    by_range = {
        "from_account_id": HOLDING_ACCOUNT,
        "to_account_id": OTHER_ACCOUNT,
        "first_identifier": identifier,
        "last_identifier": identifier,
    }
    refused(ledger.post("/v1/internal-transfers", json=by_range), 422, "MALFORMED_IDENTIFIER")


def test_the_largest_serial_is_still_an_identifier(ledger: TestClient) -> None:
    identifier = f"CA0001-THA01-THA-{2**53 - 1}-2025"
    assert ledger.get("/v1/audit", params={"first_identifier": identifier}).json() == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/v1/internal-transfers",
            {"from_account_id": HOLDING_ACCOUNT, "to_account_id": OTHER_ACCOUNT, "quantity": "5"},
        ),
        (
            "/v1/internal-transfers",
            {"from_account_id": HOLDING_ACCOUNT, "to_account_id": OTHER_ACCOUNT, "quantity": 5.0},
        ),
        (
            "/v1/internal-transfers",
            {"from_account_id": HOLDING_ACCOUNT, "to_account_id": OTHER_ACCOUNT, "quantity": True},
        ),
        ("/v1/issuances", issuance_body("5")),  # type: ignore[arg-type]
        ("/v1/issuances", issuance_body(5, vintage="2025")),
        (
            "/v1/uses",
            {"account_id": HOLDING_ACCOUNT, "purpose": "NDC", "year_of_use": "2026", "quantity": 1},
        ),
    ],
)
def test_numbers_given_as_strings_floats_or_booleans_are_422(
    ledger: TestClient, path: str, body: dict[str, Any]
) -> None:
    refused(ledger.post(path, json=body), 422, "MALFORMED_REQUEST")


@pytest.mark.parametrize(
    ("path", "body", "reason"),
    [
        # PostgreSQL cannot store NUL in text: before validation this was a 500 there.
        ("/v1/accounts", {"account_id": "THA-N-1", "name": "a\x00b"}, "MALFORMED_TEXT"),
        ("/v1/accounts", {"account_id": "THA-N-2", "name": "bell\x07"}, "MALFORMED_TEXT"),
        (
            "/v1/accounts",
            {"account_id": "THA-N-3", "holder_entity_id": "ENT\x1b[31m"},
            "MALFORMED_TEXT",
        ),
        ("/v1/issuances", issuance_body(5, sector="energy\x0b"), "MALFORMED_TEXT"),
        ("/v1/issuances", issuance_body(5, authorisation_id="LOA\x07"), "MALFORMED_IDENTIFIER"),
        ("/v1/registry/freeze", {"reason": "stop\x00"}, "MALFORMED_TEXT"),
    ],
)
def test_control_characters_in_strings_are_422(
    ledger: TestClient, path: str, body: dict[str, Any], reason: str
) -> None:
    refused(ledger.post(path, json=body), 422, reason)


def test_loa_terms_keep_line_breaks_but_refuse_other_control_characters(
    ledger: TestClient,
) -> None:
    body = {
        "authorised_on": "2024-06-01",
        "cooperative_approach_id": "CA0001",
        "authorised_parties": ["THA", "CHE"],
        "purposes": ["NDC"],
    }
    refused(
        ledger.post(
            "/v1/authorisations", json={**body, "authorisation_id": "LOA-T-1", "terms": "a\x1bb"}
        ),
        422,
        "MALFORMED_TEXT",
    )
    terms = "Article 1.\n\tUnits may be used\r\nonce."
    recorded = ledger.post(
        "/v1/authorisations", json={**body, "authorisation_id": "LOA-T-2", "terms": terms}
    )
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["terms"] == terms


@pytest.mark.parametrize("account_id", ["%00", "a%07b", "x" * 65])
def test_a_malformed_account_id_in_the_path_is_422(ledger: TestClient, account_id: str) -> None:
    refused(ledger.get(f"/v1/accounts/{account_id}"), 422, "MALFORMED_IDENTIFIER")
