"""The wire contract: signing, verification, and what it refuses."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from a6wire.errors import (
    BadSignatureError,
    MalformedMessageError,
    UnknownSenderError,
    UnsupportedSchemaVersionError,
    WrongRoleError,
)
from a6wire.keys import (
    generate_private_key,
    load_federation_directory,
    load_private_key_pem,
    public_key_base64,
    save_private_key_pem,
)
from a6wire.messages import Done, DoneOutcome, Envelope, SerialBlock, Vote, VoteChoice
from a6wire.signing import payload_digest, seal
from a6wire.topics import DECISION_TOPIC, inbox_topic
from a6wire.verification import (
    check_sender_role,
    decode_envelope,
    encode_envelope,
    verify_envelope,
)
from tests.sim import factories

pytestmark = pytest.mark.unit

DIRECTORY = factories.directory_for(["CHE", "GHA", "JPN"])
TRANSFER_ID = uuid.UUID(int=7)


def _prepare_envelope(sender: str = "CHE", key_party: str = "CHE") -> Envelope:
    prepare = factories.prepare(
        TRANSFER_ID, "CHE", ["GHA"], [factories.block(1, 10)], factories.at(60_000)
    )
    return seal(
        prepare,
        sender_party=sender,
        sent_at=factories.at(0),
        message_id=uuid.UUID(int=1),
        private_key=factories.party_key(key_party),
    )


def test_round_trip_through_bytes_verifies() -> None:
    envelope = _prepare_envelope()
    decoded = decode_envelope(encode_envelope(envelope))
    assert decoded == envelope
    assert verify_envelope(decoded, DIRECTORY) == envelope


def _leaf_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaf_paths(v, (*prefix, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _leaf_paths(v, (*prefix, i))]
    return [prefix]


def _tampered(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if value is None:
        return 1  # a null field given a value: quantity_cap becomes 1, a date is refused
    text = str(value)
    replacements = {"CHE": "JPN", "GHA": "JPN", "NDC": "OIMP"}
    if text in replacements:
        return replacements[text]
    if not text:
        return "x"
    return text[:-1] + ("1" if text[-1] != "1" else "2")


SIGNED = json.loads(encode_envelope(_prepare_envelope()))
FIELDS = [path for path in _leaf_paths(SIGNED) if path != ("signature",)]


@pytest.mark.parametrize("path", FIELDS, ids=lambda path: ".".join(map(str, path)))
def test_tampering_with_any_field_is_detected(path: tuple[Any, ...]) -> None:
    raw = json.loads(json.dumps(SIGNED))
    holder = raw
    for part in path[:-1]:
        holder = holder[part]
    original = holder[path[-1]]
    holder[path[-1]] = _tampered(original)
    assert holder[path[-1]] != original
    try:
        envelope = decode_envelope(json.dumps(raw))
    except (MalformedMessageError, UnsupportedSchemaVersionError):
        return  # refused before verification: also a detection
    with pytest.raises((BadSignatureError, WrongRoleError, UnknownSenderError)):
        verify_envelope(envelope, DIRECTORY)


def test_a_signature_by_another_key_is_refused() -> None:
    envelope = _prepare_envelope(key_party="JPN")
    with pytest.raises(BadSignatureError) as error:
        verify_envelope(envelope, DIRECTORY)
    assert error.value.reason_code == "BAD_SIGNATURE"


def test_an_unknown_sender_is_refused() -> None:
    directory = factories.directory_for(["GHA", "JPN"])
    with pytest.raises(UnknownSenderError) as error:
        verify_envelope(_prepare_envelope(), directory)
    assert error.value.reason_code == "UNKNOWN_SENDER"


@pytest.mark.parametrize("version", ["3.0", "0.7", "1000.0"])
def test_an_unknown_schema_version_is_refused_before_parsing(version: str) -> None:
    raw = json.loads(encode_envelope(_prepare_envelope()))
    raw["schema_version"] = version
    with pytest.raises(UnsupportedSchemaVersionError) as error:
        decode_envelope(json.dumps(raw))
    assert error.value.reason_code == "UNSUPPORTED_SCHEMA_VERSION"


def test_a_prepare_not_from_its_coordinator_is_the_wrong_role() -> None:
    envelope = _prepare_envelope(sender="JPN", key_party="JPN")
    with pytest.raises(WrongRoleError) as error:
        verify_envelope(envelope, DIRECTORY)
    assert error.value.reason_code == "WRONG_ROLE"


def test_a_vote_from_a_non_participant_is_the_wrong_role() -> None:
    digest = payload_digest(_prepare_envelope().payload)
    vote = Vote(
        transfer_id=TRANSFER_ID, coordinator_party="CHE", prepare_digest=digest, vote=VoteChoice.YES
    )
    envelope = seal(
        vote,
        sender_party="JPN",
        sent_at=factories.at(1),
        message_id=uuid.UUID(int=2),
        private_key=factories.party_key("JPN"),
    )
    verify_envelope(envelope, DIRECTORY)
    with pytest.raises(WrongRoleError):
        check_sender_role(envelope, "CHE", ["GHA"])
    check_sender_role(envelope, "CHE", ["GHA", "JPN"])


def test_a_done_from_the_coordinator_is_the_wrong_role() -> None:
    done = Done(transfer_id=TRANSFER_ID, coordinator_party="CHE", outcome=DoneOutcome.COMMITTED)
    envelope = seal(
        done,
        sender_party="CHE",
        sent_at=factories.at(1),
        message_id=uuid.UUID(int=3),
        private_key=factories.party_key("CHE"),
    )
    with pytest.raises(WrongRoleError):
        verify_envelope(envelope, DIRECTORY)


@pytest.mark.parametrize(("first", "last", "quantity"), [(1, 10, 9), (1, 10, 11), (10, 1, 0)])
def test_block_quantity_must_be_last_minus_first_plus_one(
    first: int, last: int, quantity: int
) -> None:
    fields = factories.block(1, 10).model_dump()
    fields.update(first_serial=first, last_serial=last, quantity=quantity)
    with pytest.raises(ValidationError):
        SerialBlock(**fields)


def test_vote_reasons_match_the_vote() -> None:
    digest = "0" * 64
    with pytest.raises(ValidationError):
        Vote(transfer_id=TRANSFER_ID, coordinator_party="CHE", prepare_digest=digest, vote="NO")
    with pytest.raises(ValidationError):
        Vote(
            transfer_id=TRANSFER_ID,
            coordinator_party="CHE",
            prepare_digest=digest,
            vote="NO",
            reason_codes=("not upper snake",),
        )


def test_malformed_bytes_are_refused() -> None:
    with pytest.raises(MalformedMessageError):
        decode_envelope(b"not json")
    with pytest.raises(MalformedMessageError):
        decode_envelope(b'{"schema_version": 1}')


def test_keys_and_directory_load_from_files(tmp_path: Path) -> None:
    key = generate_private_key()
    save_private_key_pem(key, tmp_path / "node.pem")
    loaded = load_private_key_pem(tmp_path / "node.pem")
    assert public_key_base64(loaded) == public_key_base64(key)
    (tmp_path / "directory.json").write_text(DIRECTORY.model_dump_json())
    assert load_federation_directory(tmp_path / "directory.json") == DIRECTORY


def test_topic_names() -> None:
    assert inbox_topic("THA") == "a6.node.THA.inbox"
    assert DECISION_TOPIC == "a6.decisions"


# 2**63: one past what any node's signed 64-bit serial column holds.
SERIAL_BEYOND_64_BITS = 2**63


@pytest.mark.parametrize(
    "overrides",
    [
        {"first_serial": SERIAL_BEYOND_64_BITS, "last_serial": SERIAL_BEYOND_64_BITS},
        {"first_serial": 1, "last_serial": SERIAL_BEYOND_64_BITS},
        # One past what RFC 8785 (and any float64 JSON reader) holds exactly.
        {"first_serial": 2**53, "last_serial": 2**53},
        {"authorisation_version": 2**31},
        {"authorisation_id": "LOA\x07-0001"},
        {"authorisation_id": "LOA 0001"},
        {"authorisation_id": "L" * 65},
        {"sector": "energy\x00"},
        {"metric": "tCO2e\x1b[2J"},
        {"activity_type": "solar\x85"},
    ],
)
def test_a_block_the_database_cannot_store_is_refused(overrides: dict[str, Any]) -> None:
    fields = factories.block(1, 10).model_dump()
    fields.update(overrides)
    fields["quantity"] = fields["last_serial"] - fields["first_serial"] + 1
    with pytest.raises(ValidationError):
        SerialBlock(**fields)


def test_the_largest_serial_crosses_the_wire() -> None:
    fields = factories.block(1, 10).model_dump()
    fields.update(first_serial=2**53 - 10, last_serial=2**53 - 1, quantity=10)
    assert SerialBlock(**fields).last_serial == 2**53 - 1


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("authorisation", "terms"), "article\x00one"),
        (("authorisation", "authorised_entities"), ("ENTITY\x1b",)),
        (("authorisation", "authorisation_id"), "LOA\x07"),
        (("authorisation", "version"), 2**31),
        (("authorisation", "quantity_cap"), 2**63),
        (("from_account_id",), "CHE\x00A"),
        (("to_account_id",), "GHA-A\n"),
    ],
)
def test_a_prepare_with_control_characters_or_unstorable_numbers_is_refused(
    path: tuple[str, ...], value: Any
) -> None:
    envelope = _prepare_envelope()
    raw = json.loads(encode_envelope(envelope))
    target = raw["payload"]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(MalformedMessageError):
        decode_envelope(json.dumps(raw).encode())


def test_loa_terms_may_keep_line_breaks_on_the_wire() -> None:
    envelope = _prepare_envelope()
    raw = json.loads(encode_envelope(envelope))
    raw["payload"]["authorisation"]["terms"] = "Article 1.\n\tOnce.\r\n"
    decoded = decode_envelope(json.dumps(raw).encode())
    assert decoded.payload.authorisation.terms == "Article 1.\n\tOnce.\r\n"  # type: ignore[union-attr]
