"""First transfer at use, on two real nodes over the real broker (issue 9, hole 4).

CHE's LoA authorises OIMP with first transfer = use or cancellation. CHE sends 40
units to GHA for OIMP: that is not their first transfer, so CHE records no
corresponding adjustment and its AEF shows them authorised and transferred but
not first transferred. GHA then uses 15 for OIMP through its API: the use writes
a signed FIRST_TRANSFER_NOTICE to CHE's inbox in the same transaction, and CHE,
on reading it, records its +15 for vintage 2025. A refused use changes nothing
anywhere. Both AEFs pass ``registry-node aef consistency``.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from registry.application.commands import RecordAuthorisation
from registry.domain.authorisations import FirstTransferDefinition
from registry.entrypoints.cli import app as cli
from tests.integration.api.conftest import ok
from tests.integration.transfers.test_two_nodes import (
    FINAL_WAIT_S,
    POLL_INTERVAL_S,
    RECEIVER_ACCOUNT,
    RunningNode,
    _body,
    federation,
)
from tests.unit.application.support import PARTNER, PARTY, oimp_authorisation

__all__ = ["federation"]  # the two-node fixture, used below by name

SENT = 40
USED = 15
VINTAGE = 2025


def _ca_ledger(node: RunningNode) -> dict[str, Any]:
    body: dict[str, Any] = ok(node.client.get("/v1/ca-ledger"))
    return body


def _balance(node: RunningNode) -> int:
    return sum(row["quantity"] for row in _ca_ledger(node)["balances"] if row["year"] == VINTAGE)


def _wait_balance(node: RunningNode, expected: int) -> None:
    deadline = time.monotonic() + FINAL_WAIT_S
    while _balance(node) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"CA balance {_balance(node)}, expected {expected}")
        time.sleep(POLL_INTERVAL_S)


def _aef(node: RunningNode, year: int) -> dict[str, Any]:
    document: dict[str, Any] = ok(node.client.get(f"/v1/reports/aef/{year}"))
    return document


def _actions(document: dict[str, Any]) -> list[tuple[str, int, bool]]:
    return [
        (row["action_type"], row["quantity"], row["first_transfer"])
        for row in document["tables"]["actions"]
    ]


def _held(node: RunningNode) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = ok(node.client.get("/v1/holdings/totals"))
    return body


def test_an_oimp_use_abroad_is_the_authorising_partys_first_transfer(
    federation: dict[str, RunningNode], tmp_path: Path
) -> None:
    sender, receiver = federation[PARTY], federation[PARTNER]
    # Version 2 of CHE's LoA: NDC and OIMP, the OIMP first transfer at use or cancellation.
    sender.ledger().run(
        RecordAuthorisation(
            oimp_authorisation(FirstTransferDefinition.USE_OR_CANCELLATION, version=2)
        )
    )
    response = sender.client.post(
        "/v1/transfers?wait_s=30",
        json=_body(quantity=SENT, purpose="OIMP"),
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text
    transfer_id = response.json()["transfer_id"]
    assert sender.wait_final(transfer_id, completed=True)["status"] == "COMMITTED"
    assert receiver.wait_final(transfer_id)["status"] == "COMMITTED"
    # Not the first transfer: no CA at CHE; its AEF reports a transfer, not a first transfer.
    assert _ca_ledger(sender)["entries"] == []
    year = sender.node.clock.now().year
    assert ("transfer", SENT, False) in _actions(_aef(sender, year))
    assert "first_transfer" not in {row[0] for row in _actions(_aef(sender, year))}

    # A refused use (more than GHA holds) changes no balance and no CA ledger anywhere.
    before = (_held(sender), _held(receiver), _ca_ledger(sender), _ca_ledger(receiver))
    too_much = {"account_id": RECEIVER_ACCOUNT, "purpose": "OIMP", "quantity": SENT + 1}
    refused = receiver.client.post("/v1/uses", json=too_much)
    assert refused.status_code == 409, refused.text
    assert refused.json()["reason"] == "INSUFFICIENT_UNITS"
    assert (_held(sender), _held(receiver), _ca_ledger(sender), _ca_ledger(receiver)) == before

    use = {"account_id": RECEIVER_ACCOUNT, "purpose": "OIMP", "quantity": USED}
    used = ok(receiver.client.post("/v1/uses", json=use))
    assert used["quantity"] == USED
    _wait_balance(sender, USED)
    (entry,) = _ca_ledger(sender)["entries"]
    assert (entry["cause"], entry["year"], entry["quantity"]) == ("FIRST_TRANSFER", VINTAGE, USED)
    assert _ca_ledger(receiver)["entries"] == []
    assert ("first_transfer", USED, True) in _actions(_aef(sender, year))
    assert ("use_for_oimp", USED) in [
        (kind, quantity) for kind, quantity, _ in _actions(_aef(receiver, year))
    ]

    # Both Parties' AEFs agree, checked by the operator's own command.
    files = []
    for node in (sender, receiver):
        path = tmp_path / f"aef-{node.node.settings.party}.json"
        path.write_text(json.dumps(_aef(node, year)))
        files.append(str(path))
    result = CliRunner().invoke(cli, ["aef", "consistency", *files])
    assert result.exit_code == 0, result.output
