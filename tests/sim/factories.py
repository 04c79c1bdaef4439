"""Builders of well-formed wire messages, shared by the unit tests and the simulator."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from a6wire.directory import FederationDirectory, FederationMember
from a6wire.keys import private_key_from_seed, public_key_base64
from a6wire.messages import (
    AuthorisationSnapshot,
    FirstTransferDefinition,
    Prepare,
    Purpose,
    SerialBlock,
)
from a6wire.topics import inbox_topic

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
APPROACH_ID = "CA0001"


def party_key(party: str, salt: str = "") -> Ed25519PrivateKey:
    """A fixed key per Party, so runs replay exactly; ``salt`` makes a forger's key."""
    return private_key_from_seed(hashlib.sha256(f"a6sim:{party}:{salt}".encode()).digest())


def registry_of(party: str) -> str:
    return f"{party}01"


def account_of(party: str) -> str:
    return f"{registry_of(party)}-HOLDING-1"


def directory_for(parties: list[str]) -> FederationDirectory:
    return FederationDirectory(
        members=tuple(
            FederationMember(
                party=party,
                registry_id=registry_of(party),
                public_key_base64=public_key_base64(party_key(party)),
                inbox_topic=inbox_topic(party),
            )
            for party in parties
        )
    )


def block(
    first: int,
    last: int,
    *,
    originating_party: str = "CHE",
    first_transfer_done: bool = False,
) -> SerialBlock:
    return SerialBlock(
        first_serial=first,
        last_serial=last,
        quantity=last - first + 1,
        cooperative_approach_id=APPROACH_ID,
        originating_registry_id=registry_of(originating_party),
        first_transferring_party=originating_party,
        vintage=2025,
        metric="tCO2e",
        gwp="AR5-GWP100",
        mitigation_type="emission_reduction",
        sector="energy",
        activity_type="solar_pv",
        first_transfer_done=first_transfer_done,
        authorisation_id="LOA-0001",
        authorisation_version=1,
    )


def authorisation(parties: list[str]) -> AuthorisationSnapshot:
    return AuthorisationSnapshot(
        authorisation_id="LOA-0001",
        authorisation_date=date(2025, 1, 15),
        cooperative_approach_id=APPROACH_ID,
        version=1,
        authorised_parties=tuple(parties),
        purposes=(Purpose.NDC, Purpose.OIMP),
        first_transfer_definition=FirstTransferDefinition.AUTHORISATION,
    )


def prepare(
    transfer_id: UUID,
    coordinator: str,
    participants: list[str],
    blocks: list[SerialBlock],
    deadline: datetime,
    *,
    to_party: str | None = None,
) -> Prepare:
    receiver = to_party or participants[0]
    return Prepare(
        transfer_id=transfer_id,
        coordinator_party=coordinator,
        participants=tuple(participants),
        from_registry_id=registry_of(coordinator),
        from_account_id=account_of(coordinator),
        to_registry_id=registry_of(receiver),
        to_account_id=account_of(receiver),
        blocks=tuple(blocks),
        authorisation=authorisation([coordinator, *participants]),
        purpose=Purpose.NDC,
        deadline=deadline,
    )


def at(milliseconds: int) -> datetime:
    return EPOCH + timedelta(milliseconds=milliseconds)
