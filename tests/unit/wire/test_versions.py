"""Wire versioning: minors of one major interoperate both ways, unknown majors are refused.

A node of minor 1 is played two ways: its messages are built as it would send
them (fields this code does not know, signed over the RFC 8785 form of the
JSON), and this code is run as that node by raising ``SCHEMA_MINOR`` to 1.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from functools import partial
from typing import Any

import pytest

from a6wire import messages
from a6wire.errors import MalformedMessageError, UnsupportedSchemaVersionError
from a6wire.messages import Decision, Outcome, Prepare, Vote, VoteChoice
from a6wire.signing import canonical_json_bytes, payload_digest, seal
from a6wire.verification import (
    decode_envelope,
    encode_envelope,
    verify_envelope,
    verify_signature,
)
from registry.protocol.arbiter import decision_refusal
from tests.unit.wire import vectors
from tests.unit.wire.test_vectors import DIRECTORY

pytestmark = pytest.mark.unit


def _as_sent_by(message: dict[str, Any], party: str) -> bytes:
    """Sign a message's JSON as any implementation does: Ed25519 over its JCS bytes."""
    message = {key: value for key, value in message.items() if key != "signature"}
    signature = vectors.party_key(party).sign(canonical_json_bytes(message))
    message["signature"] = base64.b64encode(signature).decode("ascii")
    return json.dumps(message, ensure_ascii=False).encode("utf-8")


def _newer_minor_prepare() -> dict[str, Any]:
    """This code's PREPARE as a node of minor 1 sends it: fields at every level."""
    message: dict[str, Any] = json.loads(encode_envelope(vectors.build_envelopes()["prepare"]))
    message["schema_version"] = "2.1"
    message["trace"] = {"hop": 1}
    message["payload"]["settlement_window"] = "PT4H"
    message["payload"]["blocks"][0]["host_methodology"] = "AMS-I.D v18"
    return message


def test_a_node_keeps_and_verifies_the_fields_of_a_newer_minor() -> None:
    message = _newer_minor_prepare()
    envelope = verify_envelope(decode_envelope(_as_sent_by(message, "CHE")), DIRECTORY)
    assert envelope.model_extra == {"trace": {"hop": 1}}
    assert isinstance(envelope.payload, Prepare)
    assert envelope.payload.blocks[0].model_extra == {"host_methodology": "AMS-I.D v18"}
    # Re-encoded, stored or forwarded, it is still exactly what the sender signed.
    assert json.loads(encode_envelope(envelope)) == json.loads(_as_sent_by(message, "CHE"))
    # The digest a vote names is the one the newer coordinator computes on its JSON.
    expected = hashlib.sha256(canonical_json_bytes(message["payload"])).hexdigest()
    assert payload_digest(envelope.payload, envelope.schema_version) == expected


def test_a_commit_of_this_minor_carries_a_newer_minors_evidence_intact() -> None:
    """An older coordinator embeds a newer participant's YES (with fields it does not
    know) in its COMMIT; a third node still verifies that vote's signature."""
    prepare = vectors.build_envelopes()["prepare"]
    digest = payload_digest(prepare.payload)
    vote = json.loads(encode_envelope(vectors.build_envelopes()["vote_yes"]))
    vote["schema_version"] = "2.1"
    vote["payload"]["remarks"] = "checked against the national inventory"
    newer_vote = decode_envelope(_as_sent_by(vote, "GHA"))
    commit = seal(
        Decision(
            transfer_id=prepare.transfer_id,
            outcome=Outcome.COMMIT,
            decided_by="CHE",
            coordinator_party="CHE",
            participants=("GHA",),
            prepare_digest=digest,
            yes_votes=(newer_vote,),
            prepare=prepare,
        ),
        sender_party="CHE",
        sent_at=vectors.SENT_AT,
        message_id=uuid.UUID(int=40),
        private_key=vectors.party_key("CHE"),
    )
    assert commit.schema_version == messages.SCHEMA_VERSION
    read = verify_envelope(decode_envelope(encode_envelope(commit)), DIRECTORY)
    assert decision_refusal(read, partial(verify_signature, directory=DIRECTORY)) is None
    assert isinstance(read.payload, Decision)
    assert read.payload.yes_votes[0].payload.model_extra == {
        "remarks": "checked against the national inventory"
    }


@pytest.mark.parametrize("version", ["2.0", 1])
def test_unknown_fields_in_this_minor_or_an_older_one_are_refused(version: object) -> None:
    message = _newer_minor_prepare()
    message["schema_version"] = version
    with pytest.raises(MalformedMessageError) as error:
        decode_envelope(_as_sent_by(message, "CHE"))
    assert error.value.reason_code == "MALFORMED_MESSAGE"
    for path in ("trace", "payload.settlement_window", "payload.blocks.0.host_methodology"):
        assert path in str(error.value)


def test_code_cannot_build_a_message_with_a_field_it_does_not_know() -> None:
    vote = Vote.model_validate(
        {
            "transfer_id": str(vectors.TRANSFER_ID),
            "coordinator_party": "CHE",
            "prepare_digest": "0" * 64,
            "vote": VoteChoice.YES,
            "remarks": "a typo of a field name",
        }
    )
    with pytest.raises(ValueError, match=r"payload\.remarks"):
        seal(
            vote,
            sender_party="GHA",
            sent_at=vectors.SENT_AT,
            message_id=uuid.UUID(int=41),
            private_key=vectors.party_key("GHA"),
        )


def test_a_node_of_a_newer_minor_reads_this_minors_messages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent = {name: encode_envelope(envelope) for name, envelope in vectors.build_envelopes().items()}
    monkeypatch.setattr(messages, "SCHEMA_MINOR", 1)
    for data in sent.values():
        envelope = verify_envelope(decode_envelope(data), DIRECTORY)
        assert envelope.schema_version == "2.0"
        assert encode_envelope(envelope) == data
    commit = decode_envelope(sent["decision_commit"])
    assert decision_refusal(commit, partial(verify_signature, directory=DIRECTORY)) is None
    # Minor 1 knows every field of minor 1: one it does not know is refused.
    with pytest.raises(MalformedMessageError, match="trace"):
        decode_envelope(_as_sent_by(_newer_minor_prepare(), "CHE"))


@pytest.mark.parametrize("version", ["3.0", "3.1", "0.9"])
def test_an_unknown_major_is_refused_with_its_code(version: str) -> None:
    message = json.loads(encode_envelope(vectors.build_envelopes()["vote_yes"]))
    message["schema_version"] = version
    with pytest.raises(UnsupportedSchemaVersionError) as error:
        decode_envelope(_as_sent_by(message, "GHA"))
    assert error.value.reason_code == "UNSUPPORTED_SCHEMA_VERSION"


@pytest.mark.parametrize("version", [2, "2", "2.01", "v2.0", "1.0", True, None])
def test_a_version_not_written_as_major_dot_minor_is_malformed(version: object) -> None:
    message = json.loads(encode_envelope(vectors.build_envelopes()["vote_yes"]))
    message["schema_version"] = version
    with pytest.raises(MalformedMessageError) as error:
        decode_envelope(_as_sent_by(message, "GHA"))
    assert error.value.reason_code == "MALFORMED_MESSAGE"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sent_at", "2026-03-01T09:30:00.250000+00:00"),
        ("sent_at", "2026-03-01T10:30:00.250000+01:00"),
        ("message_id", "00000000-0000-0000-0000-00000000000A"),
    ],
)
def test_a_schema_2_envelope_in_another_spelling_is_refused(field: str, value: str) -> None:
    """Signed over its own spelling, it would verify, but the node would store,
    embed and digest other bytes than were signed."""
    message = json.loads(encode_envelope(vectors.build_envelopes()["vote_yes"]))
    message[field] = value
    with pytest.raises(MalformedMessageError) as error:
        decode_envelope(_as_sent_by(message, "GHA"))
    assert error.value.reason_code == "NOT_NORMAL_FORM"


def test_an_unknown_field_jcs_cannot_represent_is_refused() -> None:
    message = json.loads(encode_envelope(vectors.build_envelopes()["vote_yes"]))
    message["schema_version"] = "2.1"
    data = _as_sent_by(message, "GHA").replace(b'"2.1",', b'"2.1", "big": 9007199254740993,')
    with pytest.raises(MalformedMessageError) as error:
        decode_envelope(data)
    assert error.value.reason_code == "NOT_CANONICALISABLE"
