"""Build the published signature test vectors (shared/a6wire/test_vectors).

    python -m tests.unit.wire.vectors --write      # rewrite the schema 2 vectors

Each vector is one real envelope as a node sends it, with the bytes its
signature covers (as UTF-8 text and as hex), the signature, the sender's public
key and the seed of that key (a test key, published so that another
implementation can re-sign and compare; Ed25519 signatures are deterministic).
``tests/unit/wire/test_vectors.py`` rebuilds them and checks the files.

The ``v1_*`` vectors were written by the code of schema 1 (commit df74c22, before
this module's schema 2), by running ``build_envelopes`` and ``vector`` against
that tree; they cannot be rebuilt here, only verified, which is what a node
does with the schema 1 records on the decision topic and the unit log.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from a6wire import signing
from a6wire.keys import private_key_from_seed, public_key_base64
from a6wire.messages import (
    AuthorisationSnapshot,
    Decision,
    Done,
    DoneOutcome,
    Envelope,
    FirstTransferDefinition,
    FirstTransferNotice,
    NoticeAction,
    Outcome,
    Prepare,
    Purpose,
    SerialBlock,
    UnitEvent,
    UnitRecord,
    Vote,
    VoteChoice,
)
from a6wire.verification import encode_envelope

VECTORS_DIR = Path(__file__).resolve().parents[3] / "shared" / "a6wire" / "test_vectors"
SENT_AT = datetime(2026, 3, 1, 9, 30, 0, 250_000, tzinfo=UTC)
DEADLINE = datetime(2026, 3, 1, 13, 30, tzinfo=UTC)
TRANSFER_ID = uuid.UUID("0b7f8a2e-5d1c-4e8a-9f00-6a1b2c3d4e5f")
NOTICE_ID = uuid.UUID("5e1f0c9a-8b7d-4c6e-a1f2-3b4c5d6e7f80")
UNIT_RECORD_ID = uuid.UUID("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")
# The largest serial a message may carry (a6wire.identifiers.JSON_SAFE_INTEGER_MAX);
# schema 1 allowed more, so its vector keeps to a smaller one.
LARGEST_SERIAL = 2**53 - 1
# Names and free text beyond ASCII: accents, CJK, an emoji (outside the BMP: a
# surrogate pair in UTF-16), a Hebrew letter with a combining point (JCS does not
# normalise Unicode: strings are signed as sent), and the line break and tab
# that free text may hold (escaped by JCS).
ENTITIES = (
    "Soci\u00e9t\u00e9 G\u00e9n\u00e9rale \u00c9nergie",
    "\u682a\u5f0f\u4f1a\u793e",
    "\u00d8rsted A/S",
)
TERMS = (
    "Article 6.2 \u2014 ITMOs f\u00fcr NDC\n\tcorresponding adjustment "
    "\u2713 \U0001f600 \u05e9\u05bc"
)


def party_seed(party: str) -> bytes:
    return hashlib.sha256(f"a6wire test vector:{party}".encode()).digest()


def party_key(party: str) -> Ed25519PrivateKey:
    return private_key_from_seed(party_seed(party))


def _block(first: int, last: int) -> SerialBlock:
    return SerialBlock(
        first_serial=first,
        last_serial=last,
        quantity=last - first + 1,
        cooperative_approach_id="CA0001",
        originating_registry_id="CHE01",
        first_transferring_party="CHE",
        vintage=2025,
        metric="tCO2e",
        gwp="AR5-GWP100",
        mitigation_type="emission_reduction",
        sector="énergie",
        activity_type="solar_pv",
        first_transfer_done=False,
        authorisation_id="LOA-0001",
        authorisation_version=3,
    )


def _seal(payload: Any, sender: str, message: int) -> Envelope:
    return signing.seal(
        payload,
        sender_party=sender,
        sent_at=SENT_AT,
        message_id=uuid.UUID(int=message),
        private_key=party_key(sender),
    )


def build_envelopes(largest_serial: int = LARGEST_SERIAL) -> dict[str, Envelope]:
    """One envelope of each message type, with the code's own ``seal``."""
    prepare = Prepare(
        transfer_id=TRANSFER_ID,
        coordinator_party="CHE",
        participants=("GHA",),
        from_registry_id="CHE01",
        from_account_id="CHE01-HOLDING-1",
        to_registry_id="GHA01",
        to_account_id="GHA01-HOLDING-1",
        blocks=(_block(1, 1_000), _block(largest_serial - 9, largest_serial)),
        authorisation=AuthorisationSnapshot(
            authorisation_id="LOA-0001",
            authorisation_date=date(2025, 1, 15),
            cooperative_approach_id="CA0001",
            version=3,
            authorised_parties=("CHE", "GHA"),
            authorised_entities=ENTITIES,
            purposes=(Purpose.NDC, Purpose.OIMP),
            terms=TERMS,
            first_transfer_definition=FirstTransferDefinition.AUTHORISATION,
        ),
        purpose=Purpose.NDC,
        deadline=DEADLINE,
    )
    prepare_envelope = _seal(prepare, "CHE", 1)
    digest = signing.payload_digest(prepare)
    vote_yes = _seal(
        Vote(
            transfer_id=TRANSFER_ID,
            coordinator_party="CHE",
            prepare_digest=digest,
            vote=VoteChoice.YES,
        ),
        "GHA",
        2,
    )
    vote_no = _seal(
        Vote(
            transfer_id=TRANSFER_ID,
            coordinator_party="CHE",
            prepare_digest=digest,
            vote=VoteChoice.NO,
            reason_codes=("UNITS_NOT_HELD_BY_SENDER", "DEADLINE_PASSED"),
        ),
        "GHA",
        3,
    )
    commit = _seal(
        Decision(
            transfer_id=TRANSFER_ID,
            outcome=Outcome.COMMIT,
            decided_by="CHE",
            coordinator_party="CHE",
            participants=("GHA",),
            prepare_digest=digest,
            yes_votes=(vote_yes,),
            prepare=prepare_envelope,
        ),
        "CHE",
        4,
    )
    done = _seal(
        Done(transfer_id=TRANSFER_ID, coordinator_party="CHE", outcome=DoneOutcome.COMMITTED),
        "GHA",
        5,
    )
    units = _seal(
        UnitRecord(
            transfer_id=UNIT_RECORD_ID,
            event=UnitEvent.ISSUED,
            party="CHE",
            cooperative_approach_id="CA0001",
            originating_registry_id="CHE01",
            first_serial=largest_serial - 9,
            last_serial=largest_serial,
            quantity=10,
            vintage=2025,
            metric="tCO2e",
            authorisation_id="LOA-0001",
            authorisation_version=3,
        ),
        "CHE",
        6,
    )
    notice = _seal(
        FirstTransferNotice(
            notice_id=NOTICE_ID,
            authorising_party="CHE",
            noticing_registry_id="GHA01",
            authorisation_id="LOA-0001",
            authorisation_version=3,
            action=NoticeAction.USE_FOR_OIMP,
            year=2026,
            occurred_at=SENT_AT,
            blocks=(_block(1, 1_000),),
        ),
        "GHA",
        7,
    )
    return {
        "prepare": prepare_envelope,
        "vote_yes": vote_yes,
        "vote_no": vote_no,
        "decision_commit": commit,
        "done": done,
        "units_issued": units,
        "first_transfer_notice": notice,
    }


def vector(name: str, envelope: Envelope, description: str, canonical_form: str) -> dict[str, Any]:
    """A vector of an envelope sealed by the code (``canonical_bytes`` is the code's)."""
    message = json.loads(encode_envelope(envelope))
    canonical = signing.canonical_bytes(envelope)
    return {
        "name": name,
        "description": description,
        "canonical_form": canonical_form,
        "public_key_base64": public_key_base64(party_key(envelope.sender_party)),
        "test_private_key_seed_hex": party_seed(envelope.sender_party).hex(),
        "message": message,
        "canonical_utf8": canonical.decode("utf-8"),
        "canonical_hex": canonical.hex(),
        "signature_base64": envelope.signature,
        "payload_sha256_hex": signing.payload_digest(envelope.payload, envelope.schema_version),
    }


JCS = "RFC 8785 (JSON Canonicalization Scheme) of the message without its signature member"
DESCRIPTIONS = {
    "prepare": "A PREPARE: non-ASCII names and free text with a line break and tab, the "
    "largest serial a message may carry (2**53 - 1), a datetime with a fraction.",
    "vote_yes": "A YES vote naming the PREPARE by its payload digest.",
    "vote_no": "A NO vote with reason codes.",
    "decision_commit": "A COMMIT embedding the signed YES vote and the signed PREPARE "
    "(their signatures are covered by the COMMIT's).",
    "done": "A DONE.",
    "units_issued": "A unit log record: an issuance at the largest serial.",
    "first_transfer_notice": "A FIRST_TRANSFER_NOTICE.",
}


def newer_minor_vote() -> dict[str, Any]:
    """A vote as a node of minor 1 would send it: fields this code does not know,
    at the envelope and the payload, including numbers JCS writes its own way."""
    vote = build_envelopes()["vote_yes"]
    message = json.loads(encode_envelope(vote))
    message["schema_version"] = "2.1"
    # JCS orders keys by UTF-16 code units (the emoji's surrogate 0xD83D sorts
    # before U+FB33) and writes numbers as ECMAScript does (2.0 as 2, 1e21 as 1e+21).
    message["relay"] = {
        "hops": [1, 2.0, 1e21, 0.000001],
        "\ufb33": "presentation form",
        "\U0001f600": "emoji",
        "note": "\u00fcber Z\u00fcrich",
    }
    message["payload"]["remarks"] = "v\u00e9rifi\u00e9 \u2713"
    del message["signature"]
    canonical = signing.canonical_json_bytes(message)
    message["signature"] = base64.b64encode(party_key("GHA").sign(canonical)).decode("ascii")
    return {
        "name": "vote_yes_minor_2_1",
        "description": "A YES vote of schema 2.1, carrying fields schema 2.0 does not know "
        "(relay, payload.remarks): a 2.0 node verifies it over the JSON it received "
        "and keeps the unknown fields.",
        "canonical_form": JCS,
        "public_key_base64": public_key_base64(party_key("GHA")),
        "test_private_key_seed_hex": party_seed("GHA").hex(),
        "message": message,
        "canonical_utf8": canonical.decode("utf-8"),
        "canonical_hex": canonical.hex(),
        "signature_base64": message["signature"],
        "payload_sha256_hex": hashlib.sha256(
            signing.canonical_json_bytes(message["payload"])
        ).hexdigest(),
    }


def schema2_vectors() -> dict[str, dict[str, Any]]:
    vectors = {
        f"v2_{name}": vector(name, envelope, DESCRIPTIONS[name], JCS)
        for name, envelope in build_envelopes().items()
    }
    vectors["v2_vote_yes_minor_2_1"] = newer_minor_vote()
    return vectors


def render(value: dict[str, Any]) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the schema 2 vectors")
    args = parser.parse_args()
    for name, value in schema2_vectors().items():
        path = VECTORS_DIR / f"{name}.json"
        if args.write:
            path.write_text(render(value), encoding="utf-8")
        print(path)


if __name__ == "__main__":
    main()
