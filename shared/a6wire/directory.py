"""The federation directory: who the members are and how to check their signatures.

A directory lists each member's Party, registry, Ed25519 public keys, inbox topic
and status. It has a ``version``: version 0 is the unsigned file every operator
installed out of band when the federation was founded (the *genesis* file, the
format this module has always read); every later version is a ``SignedDirectory``
published by the federation's authority on the directory topic.

Governance: who may publish a version
-------------------------------------

A node is configured with the authority's public keys and a threshold *k*
(``DirectoryAuthority``). A version is accepted when at least *k* distinct
configured keys signed it. The one mechanism covers both options the Parties
may choose:

- a **secretariat key**: one key, ``k = 1``; simple, and the secretariat can
  add, suspend or re-key any member on its own;
- **k-of-n member signatures**: the n keys of member governments (or their
  delegates), any k of which must co-sign each version; no single body can
  change the membership, at the price of collecting k signatures per change.

Rules a node applies to a candidate version (``accept_directory``):

- it is strictly newer than the version the node holds (an older version or a
  replay of the current one changes nothing);
- at least ``threshold`` distinct authority keys signed its canonical bytes (a
  signature by a key not configured as authority, e.g. a member's, counts for
  nothing).

Keys and rotation: ``public_key_base64`` is the key a member signs with now;
``previous_keys`` are keys it signed with before, each accepted until its
``valid_until``. Old keys stay listed after their deadline, since a message's
key is judged at the time the message was sent when the message is replayed
from a kept log (the decision topic, the unit log), and at the receiver's clock
when it arrives on an inbox (``a6wire.verification``).
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from a6wire.decoding import load_bounded_json
from a6wire.errors import UnknownSenderError, WireError
from a6wire.identifiers import PartyCode, RegistryId, registry_party
from a6wire.messages import UtcDatetime
from a6wire.reasons import ReasonCode
from a6wire.signing import (
    ED25519_SIGNATURE_LENGTH_BYTES,
    canonical_json_bytes,
    public_key_from_base64,
)
from a6wire.topics import inbox_topic

FEDERATION_MEMBERS_MAX = 256
# A member rotating its key twice before the first deadline passes is already
# unusual; more than this many live or expired keys is a directory to clean up.
MEMBER_PREVIOUS_KEYS_MAX = 16
AUTHORITY_KEYS_MAX = 64
# Part of the signed bytes, so that no signature made for anything else (an
# envelope, another federation's document format) can stand for a directory.
DIRECTORY_SIGNING_CONTEXT = "a6.federation-directory.v1"
GENESIS_VERSION = 0


class MemberStatus(StrEnum):
    """ACTIVE members transfer; a SUSPENDED member's new transfers are refused by all."""

    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"


def _check_public_key(value: str) -> str:
    public_key_from_base64(value)
    return value


class PreviousKey(BaseModel):
    """A key a member signed with before its current one, accepted until ``valid_until``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    public_key_base64: str
    valid_until: UtcDatetime

    @field_validator("public_key_base64")
    @classmethod
    def _is_a_public_key(cls, value: str) -> str:
        return _check_public_key(value)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return public_key_from_base64(self.public_key_base64)


class FederationMember(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    party: PartyCode
    registry_id: RegistryId
    # The key the member signs with now; it has no deadline.
    public_key_base64: str
    inbox_topic: str
    status: MemberStatus = MemberStatus.ACTIVE
    previous_keys: tuple[PreviousKey, ...] = Field(default=(), max_length=MEMBER_PREVIOUS_KEYS_MAX)

    @field_validator("public_key_base64")
    @classmethod
    def _is_a_public_key(cls, value: str) -> str:
        return _check_public_key(value)

    @model_validator(mode="after")
    def _coherent(self) -> FederationMember:
        if registry_party(self.registry_id) != self.party:
            raise ValueError("a member's registry must belong to its Party")
        if self.inbox_topic != inbox_topic(self.party):
            raise ValueError(f"the inbox topic of {self.party} is {inbox_topic(self.party)}")
        keys = [self.public_key_base64, *(key.public_key_base64 for key in self.previous_keys)]
        if len(set(keys)) != len(keys):
            raise ValueError(f"a key of {self.party} is listed twice")
        return self

    @property
    def public_key(self) -> Ed25519PublicKey:
        return public_key_from_base64(self.public_key_base64)

    @property
    def active(self) -> bool:
        return self.status is MemberStatus.ACTIVE


class FederationDirectory(BaseModel):
    """The members of the federation, one per Party, as of one version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(default=GENESIS_VERSION, ge=GENESIS_VERSION)
    issued_at: UtcDatetime | None = None
    members: tuple[FederationMember, ...] = Field(max_length=FEDERATION_MEMBERS_MAX)

    @model_validator(mode="after")
    def _one_member_per_party(self) -> FederationDirectory:
        parties = [member.party for member in self.members]
        if len(set(parties)) != len(parties):
            raise ValueError("a Party is listed twice")
        return self

    @classmethod
    def from_json(cls, text: str | bytes) -> FederationDirectory:
        return cls.model_validate_json(text)

    def member(self, party: str) -> FederationMember:
        for member in self.members:
            if member.party == party:
                return member
        raise UnknownSenderError(f"{party!r} is not a member of the federation")

    def is_member(self, party: str) -> bool:
        return any(member.party == party for member in self.members)

    def is_suspended(self, party: str) -> bool:
        return self.is_member(party) and not self.member(party).active


# ------------------------------------------------------------------ signed versions


class AuthoritySignature(BaseModel):
    """One authority key's Ed25519 signature over a version's canonical bytes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    public_key_base64: str
    signature: str = Field(max_length=128)

    @field_validator("public_key_base64")
    @classmethod
    def _is_a_public_key(cls, value: str) -> str:
        return _check_public_key(value)


class SignedDirectory(BaseModel):
    """A directory version and the authority signatures over it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    directory: FederationDirectory
    signatures: tuple[AuthoritySignature, ...] = Field(default=(), max_length=AUTHORITY_KEYS_MAX)

    @model_validator(mode="after")
    def _signed_version(self) -> SignedDirectory:
        if self.directory.version <= GENESIS_VERSION or self.directory.issued_at is None:
            raise ValueError("a signed directory has a version above 0 and an issued_at")
        return self

    @classmethod
    def from_json(cls, data: str | bytes) -> SignedDirectory:
        """Parse within the bus's bounds; a refusal is a ``DirectoryRefusedError``."""
        try:
            raw = load_bounded_json(data)
        except WireError as error:
            raise DirectoryRefusedError(ReasonCode.DIRECTORY_MALFORMED, str(error)) from error
        try:
            return cls.model_validate(raw)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "the document"
            raise DirectoryRefusedError(
                ReasonCode.DIRECTORY_MALFORMED, f"{where}: {first['msg']}"
            ) from error

    def to_json(self) -> bytes:
        return self.model_dump_json(indent=2).encode("utf-8") + b"\n"


def directory_signing_bytes(directory: FederationDirectory) -> bytes:
    """What an authority signs: the canonical JSON of the version, under a context."""
    document: dict[str, Any] = {
        "context": DIRECTORY_SIGNING_CONTEXT,
        "directory": directory.model_dump(mode="json"),
    }
    return canonical_json_bytes(document)


def sign_directory(
    directory: FederationDirectory,
    private_key: Ed25519PrivateKey,
    signatures: tuple[AuthoritySignature, ...] = (),
) -> SignedDirectory:
    """Add this authority key's signature (k-of-n signers call this in turn)."""
    public = base64.b64encode(private_key.public_key().public_bytes_raw()).decode("ascii")
    signature = base64.b64encode(private_key.sign(directory_signing_bytes(directory)))
    kept = tuple(item for item in signatures if item.public_key_base64 != public)
    added = AuthoritySignature(public_key_base64=public, signature=signature.decode("ascii"))
    return SignedDirectory(directory=directory, signatures=(*kept, added))


class DirectoryAuthority(BaseModel):
    """The keys a node trusts to publish directory versions, and how many must sign."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    public_keys: frozenset[str] = Field(min_length=1, max_length=AUTHORITY_KEYS_MAX)
    threshold: int = Field(default=1, ge=1)

    @field_validator("public_keys")
    @classmethod
    def _are_public_keys(cls, value: frozenset[str]) -> frozenset[str]:
        for key in value:
            _check_public_key(key)
        return value

    @model_validator(mode="after")
    def _reachable(self) -> DirectoryAuthority:
        if self.threshold > len(self.public_keys):
            raise ValueError(
                f"a threshold of {self.threshold} signatures needs at least that many keys, "
                f"not {len(self.public_keys)}"
            )
        return self


class DirectoryRefusedError(ValueError):
    """A candidate directory version a node does not adopt; ``reason`` says why."""

    def __init__(self, reason: ReasonCode, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


def authority_signers(signed: SignedDirectory, authority: DirectoryAuthority) -> frozenset[str]:
    """The configured authority keys whose signature over the version verifies."""
    message = directory_signing_bytes(signed.directory)
    signers: set[str] = set()
    for item in signed.signatures:
        if item.public_key_base64 not in authority.public_keys:
            continue
        if _verifies(item, message):
            signers.add(item.public_key_base64)
    return frozenset(signers)


def _verifies(item: AuthoritySignature, message: bytes) -> bool:
    try:
        raw = base64.b64decode(item.signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(raw) != ED25519_SIGNATURE_LENGTH_BYTES:
        return False
    try:
        public_key_from_base64(item.public_key_base64).verify(raw, message)
    except InvalidSignature:
        return False
    return True


def check_signed(signed: SignedDirectory, authority: DirectoryAuthority) -> FederationDirectory:
    """The version, if enough authority keys signed it; ``DirectoryRefusedError`` if not."""
    signers = authority_signers(signed, authority)
    if len(signers) < authority.threshold:
        raise DirectoryRefusedError(
            ReasonCode.DIRECTORY_NOT_AUTHORISED,
            f"version {signed.directory.version} carries {len(signers)} valid authority "
            f"signature(s); {authority.threshold} needed",
        )
    return signed.directory


def accept_directory(
    current: FederationDirectory, candidate: SignedDirectory, authority: DirectoryAuthority
) -> FederationDirectory:
    """The version a node holds after reading ``candidate``; see the module docstring.

    Raises ``DirectoryRefusedError`` (the node keeps ``current``) for a version
    that is not strictly newer, or not signed by enough authority keys.
    """
    version = candidate.directory.version
    if version <= current.version:
        raise DirectoryRefusedError(
            ReasonCode.DIRECTORY_NOT_NEWER,
            f"version {version} is not newer than the version {current.version} held",
        )
    return check_signed(candidate, authority)


def newest_valid(
    genesis: FederationDirectory,
    candidates: list[SignedDirectory],
    authority: DirectoryAuthority | None,
) -> FederationDirectory:
    """The newest of the genesis and the validly signed candidates (a node's start)."""
    current = genesis
    if authority is None:
        return current
    for candidate in sorted(candidates, key=lambda item: item.directory.version):
        try:
            current = accept_directory(current, candidate, authority)
        except DirectoryRefusedError:
            continue
    return current


# ------------------------------------------------------------ the authority's edits


def amend(
    directory: FederationDirectory,
    *,
    issued_at: datetime,
    add: tuple[FederationMember, ...] = (),
    suspend: tuple[str, ...] = (),
    reinstate: tuple[str, ...] = (),
    rotate: tuple[tuple[str, str, datetime], ...] = (),
    retire: tuple[str, ...] = (),
) -> FederationDirectory:
    """The next version: members added, suspended, reinstated, or re-keyed.

    ``rotate`` holds (Party, new public key, deadline of the key it replaces): the
    replaced key joins the member's previous keys, accepted until the deadline.
    ``retire`` brings the deadline of every previous key of these Parties forward to
    ``issued_at`` (a key thought compromised). A Party named that the directory
    does not list is an error (``UnknownSenderError``).
    """
    members = {member.party: member for member in directory.members}
    for member in add:
        if member.party in members:
            raise ValueError(f"{member.party} is a member already")
        members[member.party] = member
    for parties, status in ((suspend, MemberStatus.SUSPENDED), (reinstate, MemberStatus.ACTIVE)):
        for party in parties:
            members[party] = directory.member(party).model_copy(update={"status": status})
    for party, new_key, valid_until in rotate:
        member = members.get(party) or directory.member(party)
        retired = PreviousKey(public_key_base64=member.public_key_base64, valid_until=valid_until)
        members[party] = FederationMember.model_validate(
            {
                **member.model_dump(),
                "public_key_base64": new_key,
                "previous_keys": [*member.model_dump()["previous_keys"], retired.model_dump()],
            }
        )
    for party in retire:
        member = members.get(party) or directory.member(party)
        retired_now = tuple(
            key.model_copy(update={"valid_until": min(key.valid_until, issued_at)})
            for key in member.previous_keys
        )
        members[party] = member.model_copy(update={"previous_keys": retired_now})
    return FederationDirectory(
        version=directory.version + 1, issued_at=issued_at, members=tuple(members.values())
    )
