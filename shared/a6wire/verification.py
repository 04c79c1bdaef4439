"""Decoding and verifying envelopes against the federation directory.

A receiving node runs ``decode_envelope`` then ``verify_envelope`` on every
message before anything else sees it. The checks that need only the message
and the directory live here; the checks that need the transfer (is this voter
a participant of this transfer?) are ``check_sender_role``, called with what
the node knows of the transfer, and the evidence inside a DECISION is checked
by the arbiter in ``registry.protocol``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import ValidationError

from a6wire.decoding import load_bounded_json
from a6wire.directory import FederationDirectory
from a6wire.errors import (
    BadSignatureError,
    DatetimeOutOfRangeError,
    KeyExpiredError,
    MalformedMessageError,
    NotNormalFormError,
    UnsupportedSchemaVersionError,
    WrongRoleError,
)
from a6wire.messages import (
    DATETIME_OUT_OF_RANGE_ERROR,
    LEGACY_SCHEMA_VERSION,
    SCHEMA_MAJOR,
    SCHEMA_VERSION,
    Decision,
    Done,
    Envelope,
    FirstTransferNotice,
    HoldingsSnapshot,
    Prepare,
    UnitEvent,
    UnitRecord,
    Vote,
    is_supported,
    parse_schema_version,
)
from a6wire.signing import canonical_json_bytes, signature_is_valid


def decode_envelope(data: bytes | str) -> Envelope:
    """Parse bytes from the bus; an unknown schema major is refused before the
    payload is interpreted, since a newer major may mean something else.

    The bytes are read within the bounds of ``a6wire.decoding``; every refusal,
    whatever broke, is a ``WireError`` with a reason code. A major 2 envelope
    must re-encode to the canonical bytes of the JSON received (see
    ``a6wire.signing``): the signature is checked over what was received, and
    what this node stores, embeds and digests is that same JSON.
    """
    raw = load_bounded_json(data)
    if not isinstance(raw, dict):
        raise MalformedMessageError("an envelope is a JSON object")
    written = raw.get("schema_version")
    version = parse_schema_version(written)
    if version is None:
        raise MalformedMessageError(
            f'schema_version {written!r} is not "MAJOR.MINOR" (this node writes '
            f"{SCHEMA_VERSION!r}) nor the legacy {LEGACY_SCHEMA_VERSION}"
        )
    if not is_supported(version):
        raise UnsupportedSchemaVersionError(
            f"schema version {written!r} is not supported (this node reads majors "
            f"{LEGACY_SCHEMA_VERSION} and {SCHEMA_MAJOR})"
        )
    try:
        envelope = Envelope.model_validate(raw)
    except ValidationError as error:
        if any(item["type"] == DATETIME_OUT_OF_RANGE_ERROR for item in error.errors()):
            raise DatetimeOutOfRangeError(str(error)) from error
        raise MalformedMessageError(str(error)) from error
    if version.major != LEGACY_SCHEMA_VERSION and canonical_json_bytes(raw) != (
        canonical_json_bytes(envelope.model_dump(mode="json"))
    ):
        raise NotNormalFormError(
            "the envelope is not written in the schema's one form (datetimes as "
            "YYYY-MM-DDTHH:MM:SS[.ffffff]Z, lowercase UUIDs, numbers as numbers, every "
            "field present): its signed bytes would differ from what this node stores"
        )
    return envelope


def encode_envelope(envelope: Envelope) -> bytes:
    return envelope.model_dump_json().encode("utf-8")


def verify_signature(
    envelope: Envelope, directory: FederationDirectory, *, at: datetime | None = None
) -> None:
    """Known sender, supported schema, and a signature by a key of the sender valid ``at``.

    ``at`` is when the key must still have been valid: the receiver's clock for a
    message arriving on an inbox, and by default the envelope's ``sent_at``, which
    every node reads the same from a kept log (the decision topic, the unit log),
    so all judge an old record alike whenever they read it.
    """
    version = parse_schema_version(envelope.schema_version)
    if version is None or not is_supported(version):
        raise UnsupportedSchemaVersionError(f"schema version {envelope.schema_version!r}")
    member = directory.member(envelope.sender_party)
    if signature_is_valid(envelope, member.public_key):
        return
    moment = envelope.sent_at if at is None else at
    for previous in member.previous_keys:
        if signature_is_valid(envelope, previous.public_key):
            if moment >= previous.valid_until:
                raise KeyExpiredError(
                    f"{envelope.sender_party}'s key was retired at "
                    f"{previous.valid_until.isoformat()}"
                )
            return
    raise BadSignatureError(f"the signature is not {envelope.sender_party}'s")


def verify_envelope(
    envelope: Envelope, directory: FederationDirectory, *, at: datetime | None = None
) -> Envelope:
    """``verify_signature`` plus every role check the message alone allows."""
    verify_signature(envelope, directory, at=at)
    payload = envelope.payload
    sender = envelope.sender_party
    if isinstance(payload, Prepare):
        if sender != payload.coordinator_party:
            raise WrongRoleError("a PREPARE comes from the transfer's coordinator")
        if directory.member(sender).registry_id != payload.from_registry_id:
            raise WrongRoleError("a PREPARE comes from the transferring registry")
    elif isinstance(payload, Vote | Done):
        if sender == payload.coordinator_party:
            raise WrongRoleError(f"a {payload.type} comes from a participant, not the coordinator")
    elif isinstance(payload, Decision) and sender != payload.decided_by:
        raise WrongRoleError("a DECISION is signed by the Party that decided it")
    elif isinstance(payload, FirstTransferNotice) and (
        directory.member(sender).registry_id != payload.noticing_registry_id
    ):
        raise WrongRoleError("a FIRST_TRANSFER_NOTICE comes from the registry it names")
    elif isinstance(payload, UnitRecord):
        if sender != payload.party:
            raise WrongRoleError("a unit record is announced by the Party it names")
        if (
            payload.event is UnitEvent.ISSUED
            and directory.member(sender).registry_id != payload.originating_registry_id
        ):
            raise WrongRoleError("an issuance is announced by the originating registry")
    elif isinstance(payload, HoldingsSnapshot) and (
        sender != payload.party or directory.member(sender).registry_id != payload.registry_id
    ):
        raise WrongRoleError("a holdings snapshot is signed by the registry it speaks for")
    return envelope


def check_sender_role(
    envelope: Envelope, coordinator_party: str, participants: Sequence[str]
) -> None:
    """The sender may send this message in the transfer as the node knows it."""
    payload = envelope.payload
    sender = envelope.sender_party
    if isinstance(payload, FirstTransferNotice):
        raise WrongRoleError("a FIRST_TRANSFER_NOTICE belongs to no transfer")
    if isinstance(payload, UnitRecord):
        raise WrongRoleError("a unit record belongs to no transfer")
    if isinstance(payload, HoldingsSnapshot):
        raise WrongRoleError("a holdings snapshot belongs to no transfer")
    if payload.coordinator_party != coordinator_party:
        raise WrongRoleError("the message names another coordinator")
    if isinstance(payload, Prepare):
        allowed: tuple[str, ...] = (coordinator_party,)
    elif isinstance(payload, Vote | Done):
        allowed = tuple(participants)
    elif payload.outcome == "COMMIT":
        allowed = (coordinator_party,)
    else:
        allowed = (coordinator_party, *participants)
    if sender not in allowed:
        raise WrongRoleError(f"{sender} may not send this {payload.type} in this transfer")
