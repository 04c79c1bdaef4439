"""Canonical encoding and Ed25519 signatures of envelopes.

What an envelope's signature covers depends on its major schema version
(``a6wire.messages``):

- **Major 2** (``"schema_version": "2.0"``, ``"2.1"``, ...): the RFC 8785 (JSON
  Canonicalization Scheme) bytes of the envelope's JSON object without its
  ``signature`` member, computed by ``canonical_json_bytes`` (the ``rfc8785``
  package). Any implementation with a JCS library reproduces them from the JSON
  it received; docs/wire-signatures.md says how, and
  ``shared/a6wire/test_vectors`` holds vectors to check against.
- **Major 1** (``"schema_version": 1``, records written before major 2, kept
  forever on the decision topic and the unit log): the UTF-8 of
  ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
  of the same object. Only verified, never written any more.

Only the outer envelope's signature is left out: envelopes nested in a DECISION
keep theirs, so the outer signature covers the evidence too.

A node verifies over the canonical form of the JSON it received: for major 2,
``a6wire.verification.decode_envelope`` refuses a record whose parsed model
does not re-encode to the same canonical bytes (a datetime spelt another way,
an integer sent as a string, a default left out), and the model keeps the
fields of a newer minor it does not know (``model_extra``), so the model's JSON
*is* the received JSON, and what this module computes from the model is what
the sender signed, also for evidence re-read from storage or embedded in a
DECISION.

The values the schema holds are all representable in JCS: integers are bounded
by ``a6wire.identifiers.JSON_SAFE_INTEGER_MAX`` (2**53 - 1) or less, there are
no floating-point fields (the GWP is a name), datetimes are UTC strings with a
``Z`` suffix, and strings are signed as sent (JCS does not normalise Unicode).
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

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from a6wire.errors import NotCanonicalisableError
from a6wire.messages import (
    LEGACY_SCHEMA_VERSION,
    SCHEMA_VERSION,
    Decision,
    Done,
    Envelope,
    FirstTransferNotice,
    Prepare,
    UnitRecord,
    Vote,
    parse_schema_version,
)

ED25519_PUBLIC_KEY_LENGTH_BYTES = 32
ED25519_SIGNATURE_LENGTH_BYTES = 64


def canonical_json_bytes(value: Any) -> bytes:
    """The RFC 8785 (JCS) bytes of a JSON value: the one encoding every signer uses.

    ``value`` is what ``json.loads`` returns (dict, list, str, int, float, bool,
    None), or a pydantic model's ``model_dump(mode="json")``. A value JCS cannot
    represent exactly (an integer beyond 2**53 - 1, NaN, a lone surrogate, a
    non-string key) raises ``NotCanonicalisableError``.
    """
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as error:
        raise NotCanonicalisableError(f"not representable in RFC 8785 JSON: {error}") from error
    except TypeError as error:  # a key that is not a string, a value that is not JSON
        raise NotCanonicalisableError(f"not a JSON value: {error}") from error


def legacy_canonical_json_bytes(value: Any) -> bytes:
    """The encoding schema major 1 signed; only for verifying records written then."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def _canonical_for(schema_version: int | str, value: Any) -> bytes:
    version = parse_schema_version(schema_version)
    if version is not None and version.major == LEGACY_SCHEMA_VERSION:
        return legacy_canonical_json_bytes(value)
    return canonical_json_bytes(value)


def canonical_bytes(envelope: Envelope) -> bytes:
    """The bytes an envelope's signature covers: every field but ``signature``,
    in the canonical form of the envelope's schema major."""
    return _canonical_for(
        envelope.schema_version, envelope.model_dump(mode="json", exclude={"signature"})
    )


def payload_digest(
    payload: Prepare | Vote | Decision | Done | FirstTransferNotice | UnitRecord,
    schema_version: int | str = SCHEMA_VERSION,
) -> str:
    """SHA-256 (hex) of a payload's canonical JSON; votes and decisions use the
    PREPARE's digest to say exactly which PREPARE they answer.

    ``schema_version`` is that of the envelope the payload came in: a PREPARE of
    major 1, named by decisions already on the log, keeps its major 1 digest.
    """
    return hashlib.sha256(
        _canonical_for(schema_version, payload.model_dump(mode="json"))
    ).hexdigest()


def seal(
    payload: Prepare | Vote | Decision | Done | FirstTransferNotice | UnitRecord,
    *,
    sender_party: str,
    sent_at: datetime,
    message_id: UUID,
    private_key: Ed25519PrivateKey,
) -> Envelope:
    """Wrap a payload in an envelope of this node's schema version and sign it.

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
    except (InvalidSignature, NotCanonicalisableError):
        return False
    return True


@lru_cache(maxsize=1024)
def public_key_from_base64(text: str) -> Ed25519PublicKey:
    """Parse a raw 32-byte Ed25519 public key written as base64."""
    raw = base64.b64decode(text, validate=True)
    if len(raw) != ED25519_PUBLIC_KEY_LENGTH_BYTES:
        raise ValueError(f"an Ed25519 public key is {ED25519_PUBLIC_KEY_LENGTH_BYTES} bytes")
    return Ed25519PublicKey.from_public_bytes(raw)
