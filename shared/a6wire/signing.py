"""Canonical encoding and Ed25519 signatures of envelopes.

The canonical byte encoding of an envelope, which is what is signed, is:

    UTF-8 of json.dumps(envelope.model_dump(mode="json", exclude={"signature"}),
                        sort_keys=True, separators=(",", ":"), ensure_ascii=False)

i.e. JSON with keys sorted at every depth, no whitespace, UUIDs as lowercase
hyphenated strings, datetimes in UTC as ISO 8601 with a ``Z`` suffix, dates as
``YYYY-MM-DD``, and enums as their values. Only the outer envelope's signature
is left out: envelopes nested in a DECISION keep theirs, so the outer signature
covers the evidence too. The signature is computed over the encoding of the
parsed model, not over the bytes that travelled, so a receiver re-encodes what
it parsed and checks that; models refuse unknown fields, so nothing a sender
signed can be dropped on the way in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import datetime
from functools import lru_cache
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from a6wire.messages import (
    SCHEMA_VERSION,
    Decision,
    Done,
    Envelope,
    FirstTransferNotice,
    HoldingsSnapshot,
    Prepare,
    UnitRecord,
    Vote,
)

ED25519_PUBLIC_KEY_LENGTH_BYTES = 32
ED25519_SIGNATURE_LENGTH_BYTES = 64


def _canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def canonical_bytes(envelope: Envelope) -> bytes:
    """The bytes an envelope's signature covers: every field but ``signature``."""
    return _canonical_json(envelope.model_dump(mode="json", exclude={"signature"}))


def payload_digest(
    payload: Prepare | Vote | Decision | Done | FirstTransferNotice | UnitRecord | HoldingsSnapshot,
) -> str:
    """SHA-256 (hex) of a payload's canonical JSON; votes and decisions use the
    PREPARE's digest to say exactly which PREPARE they answer."""
    return hashlib.sha256(_canonical_json(payload.model_dump(mode="json"))).hexdigest()


def seal(
    payload: Prepare | Vote | Decision | Done | FirstTransferNotice | UnitRecord | HoldingsSnapshot,
    *,
    sender_party: str,
    sent_at: datetime,
    message_id: UUID,
    private_key: Ed25519PrivateKey,
) -> Envelope:
    """Wrap a payload in an envelope and sign it with the sender's key.

    The message id is passed in, not drawn here, so that a caller that persists
    the envelope (outbox) republishes the same id and a simulation replays exactly.
    """
    unsigned = Envelope(
        message_id=message_id,
        transfer_id=payload.transfer_id,
        message_type=payload.type,
        sender_party=sender_party,
        sent_at=sent_at,
        schema_version=SCHEMA_VERSION,
        payload=payload,
    )
    signature = private_key.sign(canonical_bytes(unsigned))
    return unsigned.model_copy(update={"signature": base64.b64encode(signature).decode("ascii")})


def signature_is_valid(envelope: Envelope, public_key: Ed25519PublicKey) -> bool:
    try:
        signature = base64.b64decode(envelope.signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(signature) != ED25519_SIGNATURE_LENGTH_BYTES:
        return False
    try:
        public_key.verify(signature, canonical_bytes(envelope))
    except InvalidSignature:
        return False
    return True


@lru_cache(maxsize=1024)
def public_key_from_base64(text: str) -> Ed25519PublicKey:
    """Parse a raw 32-byte Ed25519 public key written as base64."""
    raw = base64.b64decode(text, validate=True)
    if len(raw) != ED25519_PUBLIC_KEY_LENGTH_BYTES:
        raise ValueError(f"an Ed25519 public key is {ED25519_PUBLIC_KEY_LENGTH_BYTES} bytes")
    return Ed25519PublicKey.from_public_bytes(raw)
