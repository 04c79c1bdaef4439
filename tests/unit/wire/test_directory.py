"""Versioned, signed federation directories: what a node adopts and what it keeps refusing.

The hostile cases are what an authority's adversary can do on the directory
topic: replay an older version (or the current one), forge a signature, sign
with a member's key instead of the authority's, or collect fewer signatures
than the threshold; and what a member can do with a retired key.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from a6wire.directory import (
    DirectoryAuthority,
    DirectoryRefusedError,
    FederationDirectory,
    FederationMember,
    MemberStatus,
    PreviousKey,
    SignedDirectory,
    accept_directory,
    amend,
    newest_valid,
    sign_directory,
)
from a6wire.errors import BadSignatureError, KeyExpiredError, UnknownSenderError
from a6wire.keys import public_key_base64
from a6wire.messages import Envelope
from a6wire.reasons import ReasonCode
from a6wire.signing import seal
from a6wire.topics import inbox_topic
from a6wire.verification import verify_envelope, verify_signature
from tests.sim import factories

pytestmark = pytest.mark.unit

SECRETARIAT = factories.party_key("SECRETARIAT")
AUTHORITY = DirectoryAuthority(public_keys=frozenset({public_key_base64(SECRETARIAT)}))
GENESIS = factories.directory_for(["CHE", "GHA"])
ISSUED_AT = factories.at(0)


def _version(version: int, parties: list[str]) -> FederationDirectory:
    members = factories.directory_for(parties).members
    return FederationDirectory(version=version, issued_at=ISSUED_AT, members=members)


def _signed(
    version: int, parties: list[str], key: Ed25519PrivateKey = SECRETARIAT
) -> SignedDirectory:
    return sign_directory(_version(version, parties), key)


def test_a_newer_version_signed_by_the_authority_is_adopted() -> None:
    adopted = accept_directory(GENESIS, _signed(1, ["CHE", "GHA", "JPN"]), AUTHORITY)
    assert adopted.version == 1
    assert adopted.is_member("JPN")


def test_a_signed_version_survives_its_json() -> None:
    signed = _signed(3, ["CHE", "GHA", "JPN"])
    assert SignedDirectory.from_json(signed.to_json()) == signed
    assert accept_directory(GENESIS, SignedDirectory.from_json(signed.to_json()), AUTHORITY)


@pytest.mark.parametrize("version", [1, 2])
def test_an_older_or_equal_version_is_refused_as_not_newer(version: int) -> None:
    current = accept_directory(GENESIS, _signed(2, ["CHE", "GHA", "JPN"]), AUTHORITY)
    with pytest.raises(DirectoryRefusedError) as refused:
        accept_directory(current, _signed(version, ["CHE"]), AUTHORITY)
    assert refused.value.reason is ReasonCode.DIRECTORY_NOT_NEWER


def test_a_replay_of_the_current_version_changes_nothing() -> None:
    signed = _signed(1, ["CHE", "GHA", "JPN"])
    current = accept_directory(GENESIS, signed, AUTHORITY)
    with pytest.raises(DirectoryRefusedError) as refused:
        accept_directory(current, SignedDirectory.from_json(signed.to_json()), AUTHORITY)
    assert refused.value.reason is ReasonCode.DIRECTORY_NOT_NEWER


def test_a_version_signed_by_a_member_is_not_authorised() -> None:
    """CHE is a member with a valid key, but not the federation's authority."""
    with pytest.raises(DirectoryRefusedError) as refused:
        accept_directory(GENESIS, _signed(1, ["CHE"], factories.party_key("CHE")), AUTHORITY)
    assert refused.value.reason is ReasonCode.DIRECTORY_NOT_AUTHORISED


def test_a_version_altered_after_signing_is_not_authorised() -> None:
    signed = _signed(1, ["CHE", "GHA"])
    suspended = signed.directory.members[1].model_copy(update={"status": MemberStatus.SUSPENDED})
    altered = signed.model_copy(
        update={"directory": signed.directory.model_copy(update={"members": (suspended,)})}
    )
    with pytest.raises(DirectoryRefusedError) as refused:
        accept_directory(GENESIS, altered, AUTHORITY)
    assert refused.value.reason is ReasonCode.DIRECTORY_NOT_AUTHORISED


def test_a_signature_made_under_the_authority_name_by_another_key_is_refused() -> None:
    """The signature names the authority's public key but another key made it."""
    forged = _signed(1, ["CHE"], factories.party_key("SECRETARIAT", salt="forger"))
    relabelled = forged.model_copy(
        update={
            "signatures": (
                forged.signatures[0].model_copy(
                    update={"public_key_base64": public_key_base64(SECRETARIAT)}
                ),
            )
        }
    )
    with pytest.raises(DirectoryRefusedError) as refused:
        accept_directory(GENESIS, relabelled, AUTHORITY)
    assert refused.value.reason is ReasonCode.DIRECTORY_NOT_AUTHORISED


def test_k_of_n_needs_k_distinct_authority_signatures() -> None:
    signers = [factories.party_key(f"GOV{index}") for index in range(3)]
    authority = DirectoryAuthority(
        public_keys=frozenset(public_key_base64(key) for key in signers), threshold=2
    )
    directory = _version(1, ["CHE", "GHA", "JPN"])
    once = sign_directory(directory, signers[0])
    twice_by_one = sign_directory(directory, signers[0], once.signatures)
    with pytest.raises(DirectoryRefusedError) as refused:
        accept_directory(GENESIS, twice_by_one, authority)
    assert refused.value.reason is ReasonCode.DIRECTORY_NOT_AUTHORISED
    by_two = sign_directory(directory, signers[2], once.signatures)
    assert accept_directory(GENESIS, by_two, authority).version == 1


def test_a_threshold_above_the_number_of_keys_is_refused() -> None:
    with pytest.raises(ValueError, match="threshold"):
        DirectoryAuthority(public_keys=frozenset({public_key_base64(SECRETARIAT)}), threshold=2)


@pytest.mark.parametrize(
    "text",
    [b"not json", b"{}", json.dumps({"directory": {"members": []}, "signatures": []}).encode()],
)
def test_a_malformed_or_unversioned_document_is_refused_as_malformed(text: bytes) -> None:
    with pytest.raises(DirectoryRefusedError) as refused:
        SignedDirectory.from_json(text)
    assert refused.value.reason is ReasonCode.DIRECTORY_MALFORMED


def test_a_start_adopts_the_newest_valid_version_and_skips_the_rest() -> None:
    kept = [
        _signed(2, ["CHE", "GHA", "JPN"]),
        _signed(5, ["CHE"], factories.party_key("CHE")),
        _signed(1, ["CHE", "GHA"]),
    ]
    assert newest_valid(GENESIS, kept, AUTHORITY).version == 2
    assert newest_valid(GENESIS, kept, None) == GENESIS


# --------------------------------------------------------------------- key rotation

OLD_KEY = factories.party_key("CHE")
NEW_KEY = factories.party_key("CHE", salt="rotated")
DEADLINE = factories.at(60_000)


def _rotated() -> FederationDirectory:
    che = FederationMember(
        party="CHE",
        registry_id="CHE01",
        public_key_base64=public_key_base64(NEW_KEY),
        inbox_topic=inbox_topic("CHE"),
        previous_keys=(
            PreviousKey(public_key_base64=public_key_base64(OLD_KEY), valid_until=DEADLINE),
        ),
    )
    return GENESIS.model_copy(update={"version": 1, "members": (che, GENESIS.members[1])})


def _prepare_from_che(key: Ed25519PrivateKey, sent_at_ms: int = 0) -> Envelope:
    prepare = factories.prepare(
        uuid.UUID(int=9), "CHE", ["GHA"], [factories.block(1, 10)], factories.at(600_000)
    )
    return seal(
        prepare,
        sender_party="CHE",
        sent_at=factories.at(sent_at_ms),
        message_id=uuid.uuid4(),
        private_key=key,
    )


def test_the_new_key_is_accepted_at_any_time() -> None:
    envelope = _prepare_from_che(NEW_KEY)
    verify_envelope(envelope, _rotated(), at=DEADLINE + timedelta(days=1))


def test_the_old_key_is_accepted_until_its_deadline_then_refused_as_expired() -> None:
    envelope = _prepare_from_che(OLD_KEY)
    verify_envelope(envelope, _rotated(), at=DEADLINE - timedelta(seconds=1))
    with pytest.raises(KeyExpiredError) as expired:
        verify_envelope(envelope, _rotated(), at=DEADLINE)
    assert expired.value.reason_code is ReasonCode.KEY_EXPIRED


def test_a_log_record_is_judged_at_its_sent_at_whoever_reads_it_when() -> None:
    """Read from the decision topic years later, a record sent before the deadline counts."""
    before = _prepare_from_che(OLD_KEY, sent_at_ms=1_000)
    verify_signature(before, _rotated())
    after = _prepare_from_che(OLD_KEY, sent_at_ms=60_000)
    with pytest.raises(KeyExpiredError):
        verify_signature(after, _rotated())


def test_a_key_never_listed_is_a_bad_signature_not_an_expired_key() -> None:
    envelope = _prepare_from_che(factories.party_key("CHE", salt="forger"))
    with pytest.raises(BadSignatureError):
        verify_envelope(envelope, _rotated(), at=factories.at(0))


def test_a_party_that_joined_in_a_version_verifies_and_one_not_listed_does_not() -> None:
    joined = accept_directory(GENESIS, _signed(1, ["CHE", "GHA", "JPN"]), AUTHORITY)
    envelope = seal(
        factories.prepare(
            uuid.UUID(int=11), "JPN", ["GHA"], [factories.block(1, 10)], factories.at(600_000)
        ),
        sender_party="JPN",
        sent_at=factories.at(0),
        message_id=uuid.uuid4(),
        private_key=factories.party_key("JPN"),
    )
    with pytest.raises(UnknownSenderError):
        verify_signature(envelope, GENESIS)
    verify_signature(envelope, joined)


# ------------------------------------------------------------ the authority's edits


def test_amend_makes_the_next_version_with_each_change() -> None:
    joining = _member_of("JPN")
    issued = factories.at(5_000)
    added = amend(GENESIS, issued_at=issued, add=(joining,), suspend=("GHA",))
    assert (added.version, added.issued_at) == (1, issued)
    assert added.member("JPN") == joining
    assert added.is_suspended("GHA")
    reinstated = amend(added, issued_at=issued, reinstate=("GHA",))
    assert not reinstated.is_suspended("GHA")
    assert reinstated.version == 2


def test_a_rotation_keeps_the_old_key_until_its_deadline_and_a_retirement_ends_it_now() -> None:
    rotated = amend(
        GENESIS, issued_at=ISSUED_AT, rotate=(("CHE", public_key_base64(NEW_KEY), DEADLINE),)
    )
    che = rotated.member("CHE")
    assert che.public_key_base64 == public_key_base64(NEW_KEY)
    assert [(key.public_key_base64, key.valid_until) for key in che.previous_keys] == [
        (public_key_base64(OLD_KEY), DEADLINE)
    ]
    cut_short = amend(rotated, issued_at=factories.at(1_000), retire=("CHE",))
    assert cut_short.member("CHE").previous_keys[0].valid_until == factories.at(1_000)
    envelope = _prepare_from_che(OLD_KEY)
    with pytest.raises(KeyExpiredError):
        verify_envelope(envelope, cut_short, at=factories.at(1_000))


def test_amend_refuses_a_party_twice_and_a_party_it_does_not_list() -> None:
    with pytest.raises(ValueError, match="member already"):
        amend(GENESIS, issued_at=ISSUED_AT, add=(_member_of("CHE"),))
    with pytest.raises(UnknownSenderError):
        amend(GENESIS, issued_at=ISSUED_AT, suspend=("JPN",))


def _member_of(party: str) -> FederationMember:
    return FederationMember(
        party=party,
        registry_id=f"{party}01",
        public_key_base64=public_key_base64(factories.party_key(party)),
        inbox_topic=inbox_topic(party),
    )
