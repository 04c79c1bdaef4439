"""The federation directory: who the members are and how to check their signatures.

Every operator holds the same JSON file (agreed out of band between the Parties)
listing each member's Party, registry, Ed25519 public key and inbox topic.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from a6wire.errors import UnknownSenderError
from a6wire.identifiers import PartyCode, RegistryId, registry_party
from a6wire.signing import public_key_from_base64
from a6wire.topics import inbox_topic

FEDERATION_MEMBERS_MAX = 256


class FederationMember(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    party: PartyCode
    registry_id: RegistryId
    public_key_base64: str
    inbox_topic: str

    @field_validator("public_key_base64")
    @classmethod
    def _is_a_public_key(cls, value: str) -> str:
        public_key_from_base64(value)
        return value

    @model_validator(mode="after")
    def _coherent(self) -> FederationMember:
        if registry_party(self.registry_id) != self.party:
            raise ValueError("a member's registry must belong to its Party")
        if self.inbox_topic != inbox_topic(self.party):
            raise ValueError(f"the inbox topic of {self.party} is {inbox_topic(self.party)}")
        return self

    @property
    def public_key(self) -> Ed25519PublicKey:
        return public_key_from_base64(self.public_key_base64)


class FederationDirectory(BaseModel):
    """The members of the federation, one per Party."""

    model_config = ConfigDict(frozen=True, extra="forbid")

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
