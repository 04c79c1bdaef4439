"""The identity of this registry node and its registry-wide transfer freeze."""

from __future__ import annotations

from dataclasses import dataclass

from a6wire.identifiers import is_party_code, is_registry_id, registry_party
from registry.domain.errors import DomainError, ReasonCode


@dataclass(frozen=True, slots=True)
class RegistryNode:
    """One Party's registry: ``party`` is alpha-3, ``registry_id`` is the Party plus two digits."""

    party: str
    registry_id: str
    transfers_frozen: bool = False
    freeze_reason: str = ""

    def __post_init__(self) -> None:
        if not is_party_code(self.party) or not is_registry_id(self.registry_id):
            raise DomainError(
                ReasonCode.MALFORMED_IDENTIFIER,
                f"{self.party!r}/{self.registry_id!r} is not a Party code and registry id",
            )
        if registry_party(self.registry_id) != self.party:
            raise DomainError(
                ReasonCode.MALFORMED_IDENTIFIER,
                f"registry {self.registry_id} does not belong to Party {self.party}",
            )

    def check_transfers_allowed(self) -> list[ReasonCode]:
        """Check 10: no freeze is in force."""
        return [ReasonCode.REGISTRY_FROZEN] if self.transfers_frozen else []
