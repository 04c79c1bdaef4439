"""The published signature test vectors (shared/a6wire/test_vectors) hold for this code.

Another implementation checks itself against these files; these tests check the
files against this code, so that neither drifts: the schema 2 vectors are
rebuilt from the code and must equal the files, and every vector's canonical
bytes and signature are recomputed from its message alone, as
docs/wire-signatures.md tells another implementation to.
"""

from __future__ import annotations

import base64
import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from a6wire.directory import FederationDirectory, FederationMember
from a6wire.keys import private_key_from_seed, public_key_base64
from a6wire.messages import Decision, MessageType
from a6wire.signing import canonical_bytes, canonical_json_bytes, legacy_canonical_json_bytes
from a6wire.topics import inbox_topic
from a6wire.verification import decode_envelope, verify_envelope, verify_signature
from registry.protocol.arbiter import decision_refusal
from tests.unit.wire import vectors

pytestmark = pytest.mark.unit

FILES = sorted(vectors.VECTORS_DIR.glob("*.json"))
DIRECTORY = FederationDirectory(
    members=tuple(
        FederationMember(
            party=party,
            registry_id=f"{party}01",
            public_key_base64=public_key_base64(vectors.party_key(party)),
            inbox_topic=inbox_topic(party),
        )
        for party in ("CHE", "GHA")
    )
)


def _load(path: Path) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return value


def test_the_schema_2_vectors_are_what_the_code_writes() -> None:
    rebuilt = vectors.schema2_vectors()
    on_disk = {path.stem: _load(path) for path in FILES if path.stem.startswith("v2_")}
    assert on_disk == rebuilt, "run: python -m tests.unit.wire.vectors --write"


def test_the_vectors_cover_every_message_type_both_schemas_and_non_ascii_text() -> None:
    loaded = [_load(path) for path in FILES]
    schema2 = [vector["message"] for vector in loaded if vector["message"]["schema_version"] != 1]
    assert {message["message_type"] for message in schema2} == set(MessageType)
    assert any(vector["message"]["schema_version"] == 1 for vector in loaded)
    assert any(vector["message"]["schema_version"] == "2.1" for vector in loaded)
    assert any(
        any(ord(character) > 0xFFFF for character in vector["canonical_utf8"]) for vector in loaded
    )


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_a_vector_verifies_from_its_message_alone(path: Path) -> None:
    vector = _load(path)
    message = dict(vector["message"])
    signature = base64.b64decode(message.pop("signature"), validate=True)
    legacy = message["schema_version"] == 1
    expected = (legacy_canonical_json_bytes if legacy else canonical_json_bytes)(message)
    assert expected.hex() == vector["canonical_hex"]
    assert expected.decode("utf-8") == vector["canonical_utf8"]
    assert vector["signature_base64"] == vector["message"]["signature"]
    public_key = Ed25519PublicKey.from_public_bytes(
        base64.b64decode(vector["public_key_base64"], validate=True)
    )
    public_key.verify(signature, expected)  # raises InvalidSignature
    seed = bytes.fromhex(vector["test_private_key_seed_hex"])
    assert public_key_base64(private_key_from_seed(seed)) == vector["public_key_base64"]


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_a_node_reads_and_verifies_every_vector(path: Path) -> None:
    vector = _load(path)
    envelope = verify_envelope(decode_envelope(json.dumps(vector["message"])), DIRECTORY)
    assert canonical_bytes(envelope).hex() == vector["canonical_hex"]
    assert json.loads(envelope.model_dump_json()) == vector["message"]


@pytest.mark.parametrize("name", ["v1_decision_commit", "v2_decision_commit"])
def test_a_commit_of_either_schema_counts_as_a_decision(name: str) -> None:
    """A schema 1 COMMIT on the decision topic still counts for a node read from the
    start: its PREPARE's digest is recomputed under schema 1, its evidence verifies."""
    vector = _load(vectors.VECTORS_DIR / f"{name}.json")
    record = decode_envelope(json.dumps(vector["message"]))
    assert isinstance(record.payload, Decision)
    verify = partial(verify_signature, directory=DIRECTORY)
    assert decision_refusal(record, verify) is None
    prepare = _load(vectors.VECTORS_DIR / f"{name.split('_')[0]}_prepare.json")
    assert record.payload.prepare_digest == prepare["payload_sha256_hex"]


def test_the_two_canonical_forms_differ_where_jcs_is_specific() -> None:
    """JCS orders keys by UTF-16 code units and writes numbers as ECMAScript does;
    schema 1's json.dumps did neither (the schema's own fields never hit the difference)."""
    value = {"\ufb33": 1, "\U0001f600": 2.0, "e": 1e21}
    assert canonical_json_bytes(value) == '{"e":1e+21,"\U0001f600":2,"\ufb33":1}'.encode()
    assert legacy_canonical_json_bytes(value) == '{"e":1e+21,"\ufb33":1,"\U0001f600":2.0}'.encode()
