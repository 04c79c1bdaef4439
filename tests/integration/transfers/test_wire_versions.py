"""Two nodes of different minor schema versions transfer to each other over the real broker.

One node is the real composition with one change: its signer sends schema 2.1,
as a node of a newer minor would, with fields schema 2.0 does not know at the
envelope (every message) and in the payload (every message but the PREPARE, whose
digest the coordinator computes before sealing). The other node is this code,
schema 2.0. Whichever of the two coordinates, the transfer commits at both and
completes: the 2.0 node verifies the 2.1 messages over the JSON it received, keeps
their unknown fields through its inbox, state and decision evidence, and the
2.1 node reads the 2.0 node's messages, including the COMMIT that embeds its own
2.1 vote and the unit log record of the 2.1 coordinator's issuance.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from a6wire.directory import FederationDirectory, FederationMember
from a6wire.keys import generate_private_key, public_key_base64, save_private_key_pem
from a6wire.messages import Envelope, MessageType
from a6wire.signing import canonical_json_bytes
from a6wire.topics import inbox_topic
from a6wire.verification import decode_envelope, encode_envelope
from registry import bootstrap
from registry.adapters.messaging import MESSAGING_TABLES
from registry.application.commands import (
    IssueUnits,
    OpenAccount,
    RecordAuthorisation,
    RegisterCooperativeApproach,
)
from registry.application.transfers.service import KeySigner
from registry.bootstrap import build_node, build_transfers
from registry.entrypoints.api import create_app
from registry.settings import load_settings
from tests.integration.messaging.support import UniqueNames
from tests.integration.transfers.test_two_nodes import (
    OPERATOR_TOKEN,
    RECEIVER_ACCOUNT,
    SENDER_ACCOUNT,
    RunningNode,
    _body,
    _database_url,
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

NEWER_VERSION = "2.1"
ENVELOPE_FIELD = "relay_hint"
PAYLOAD_FIELD = "remarks"


class NewerMinorSigner(KeySigner):
    """Seals as a node of schema 2.1 would: extra optional fields, signed over JCS."""

    def seal(self, payload, sent_at: datetime) -> Envelope:  # type: ignore[no-untyped-def]
        message = json.loads(encode_envelope(super().seal(payload, sent_at)))
        message["schema_version"] = NEWER_VERSION
        message[ENVELOPE_FIELD] = {"via": "ZÜRICH-1", "hops": [1, 2.5]}
        if message["message_type"] != MessageType.PREPARE:
            message["payload"][PAYLOAD_FIELD] = f"sent by a {NEWER_VERSION} node ✓"
        del message["signature"]
        signature = self._private_key.sign(canonical_json_bytes(message))
        message["signature"] = base64.b64encode(signature).decode("ascii")
        return decode_envelope(json.dumps(message, ensure_ascii=False))


@pytest.fixture(params=[PARTY, PARTNER], ids=["newer-coordinator", "newer-participant"])
def mixed_federation(
    kafka_bootstrap: str,
    database_url: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[str, dict[str, RunningNode]]]:
    newer: str = request.param
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
            # build_node also builds a signer (for the ledger's unit log records).
            signer = NewerMinorSigner if party == newer else KeySigner
            monkeypatch.setattr(bootstrap, "KeySigner", signer)
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
        yield newer, running


def _sent(node: RunningNode) -> list[Envelope]:
    outbox = MESSAGING_TABLES.outbox
    with node.node.engine.connect() as connection:
        rows = connection.execute(select(outbox.c.value).order_by(outbox.c.id)).all()
    return [decode_envelope(bytes(row.value)) for row in rows]


def test_nodes_of_two_minor_versions_transfer_to_each_other(
    mixed_federation: tuple[str, dict[str, RunningNode]],
) -> None:
    newer, nodes = mixed_federation
    sender, receiver = nodes[PARTY], nodes[PARTNER]
    response = sender.client.post(
        "/v1/transfers?wait_s=30", json=_body(), headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    assert response.status_code == 202, response.text
    transfer_id = response.json()["transfer_id"]
    # completed: the coordinator also read the participant's DONE.
    assert sender.wait_final(transfer_id, completed=True)["status"] == "COMMITTED"
    assert receiver.wait_final(transfer_id)["status"] == "COMMITTED"
    assert sender.ledger().held(SENDER_ACCOUNT) == 60
    assert receiver.ledger().held(RECEIVER_ACCOUNT) == 40
    # Each node really sent its own version (the 2.1 one with the unknown fields).
    for party, node in nodes.items():
        sent = _sent(node)
        assert sent, f"{party} sent nothing"
        expected = NEWER_VERSION if party == newer else "2.0"
        assert {envelope.schema_version for envelope in sent} == {expected}, [
            (e.message_type, e.schema_version) for e in sent
        ]
        if party == newer:
            assert all(ENVELOPE_FIELD in (envelope.model_extra or {}) for envelope in sent)
    # The winning COMMIT (by the coordinator) carries the participant's vote with
    # whatever unknown fields that vote had, and both nodes applied it.
    commit = next(
        envelope
        for envelope in _sent(sender)
        if envelope.message_type is MessageType.DECISION
        and str(envelope.transfer_id) == transfer_id
    )
    vote = commit.payload.yes_votes[0]  # type: ignore[union-attr]
    assert vote.schema_version == (NEWER_VERSION if newer == PARTNER else "2.0")
    assert (PAYLOAD_FIELD in (vote.payload.model_extra or {})) == (newer == PARTNER)
