"""Letters of Authorisation (AEF table 2), versioned, and the pure authorisation check.

The check takes a snapshot of the current version and plain values, so the
transferring and the acquiring registry run the very same function.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from a6wire.identifiers import (
    AUTHORISATION_ID_LENGTH_MAX,
    is_cooperative_approach_id,
    is_party_code,
)
from registry.domain.blocks import BlockAttributes
from registry.domain.errors import DomainError, ReasonCode


class Purpose(StrEnum):
    NDC = "NDC"
    OIMP = "OIMP"


class FirstTransferDefinition(StrEnum):
    """When the first transfer of units authorised for OIMP happens (2/CMA.3 annex, para 2(b))."""

    AUTHORISATION = "authorisation"
    ISSUANCE = "issuance"
    USE_OR_CANCELLATION = "use_or_cancellation"


@dataclass(frozen=True, slots=True)
class AuthorisationRef:
    """The LoA a transfer names: its id and, when known, the Party that issued it.

    A block is under the LoA of its first transferring Party, so ``covers`` reads
    that Party and the block's authorisation id.
    """

    authorisation_id: str
    authorising_party: str | None = None

    def covers(self, attributes: BlockAttributes) -> bool:
        return attributes.authorisation_id == self.authorisation_id and (
            self.authorising_party in (None, attributes.first_transferring_party)
        )


@dataclass(frozen=True, slots=True)
class Authorisation:
    """One version of an authorisation; revocation is a version with ``revoked`` set.

    An empty ``authorised_entities`` set authorises any entity of an authorised Party.
    """

    authorisation_id: str
    version: int
    authorising_party: str
    authorised_on: date
    cooperative_approach_id: str
    authorised_parties: frozenset[str]
    purposes: frozenset[Purpose]
    authorised_entities: frozenset[str] = frozenset()
    quantity_cap: int | None = None
    mitigation_from: date | None = None
    mitigation_to: date | None = None
    use_from: date | None = None
    use_to: date | None = None
    terms: str = ""
    oimp_first_transfer: FirstTransferDefinition | None = None
    revoked: bool = False

    def __post_init__(self) -> None:
        if (
            not 0 < len(self.authorisation_id) <= AUTHORISATION_ID_LENGTH_MAX
            or not is_party_code(self.authorising_party)
            or not is_cooperative_approach_id(self.cooperative_approach_id)
            or not all(is_party_code(party) for party in self.authorised_parties)
            or self.version < 1
        ):
            raise DomainError(
                ReasonCode.MALFORMED_IDENTIFIER,
                f"authorisation {self.authorisation_id!r} v{self.version} is malformed",
            )
        if not self.purposes:
            raise DomainError(ReasonCode.PURPOSE_NOT_AUTHORISED, "an LoA names a purpose")
        if Purpose.OIMP in self.purposes and self.oimp_first_transfer is None:
            raise DomainError(
                ReasonCode.MISSING_FIRST_TRANSFER_DEFINITION,
                "an authorisation for OIMP defines when the first transfer happens",
            )
        if self.quantity_cap is not None and self.quantity_cap <= 0:
            raise DomainError(ReasonCode.NON_POSITIVE_QUANTITY, "a quantity cap is positive")
        for start, end in (
            (self.mitigation_from, self.mitigation_to),
            (self.use_from, self.use_to),
        ):
            if start is not None and end is not None and start > end:
                raise DomainError(ReasonCode.INVALID_TIMEFRAME, f"{start} is after {end}")

    @property
    def first_transfer_at_authorisation_or_issuance(self) -> bool:
        """Whether the first transfer happens when the units are issued under this LoA."""
        return Purpose.OIMP in self.purposes and self.oimp_first_transfer in (
            FirstTransferDefinition.AUTHORISATION,
            FirstTransferDefinition.ISSUANCE,
        )

    def covers_vintage(self, vintage: int) -> bool:
        """Whether the mitigation timeframe covers a vintage (a year: the years overlap)."""
        return (self.mitigation_from is None or self.mitigation_from.year <= vintage) and (
            self.mitigation_to is None or vintage <= self.mitigation_to.year
        )

    def covers_use_on(self, day: date) -> bool:
        """Whether the use timeframe (if any) includes this day."""
        return (self.use_from is None or self.use_from <= day) and (
            self.use_to is None or day <= self.use_to
        )

    def covers_use_in_year(self, year: int) -> bool:
        """Whether a use for this year falls in the use timeframe, taken in whole years."""
        return (self.use_from is None or self.use_from.year <= year) and (
            self.use_to is None or year <= self.use_to.year
        )

    @property
    def first_transfer_at_use_or_cancellation(self) -> bool:
        return (
            Purpose.OIMP in self.purposes
            and self.oimp_first_transfer is FirstTransferDefinition.USE_OR_CANCELLATION
        )


def check_authorisation(
    authorisation: Authorisation | None,
    units: BlockAttributes,
    *,
    acquiring_party: str,
    acquiring_entity: str | None,
    purpose: Purpose,
    on: date,
    quantity: int,
    counted_quantity: int,
) -> list[ReasonCode]:
    """Check 7: the current version covers the units, purpose, timeframe, cap, Party and entity.

    ``authorisation`` is the current version of the LoA the units name (None when
    there is none); ``counted_quantity`` is what already counts against the cap.
    Returns every reason found; an empty list means the transfer is authorised.
    """
    if (
        authorisation is None
        or units.authorisation_id is None
        or units.authorisation_id != authorisation.authorisation_id
    ):
        return [ReasonCode.NO_AUTHORISATION]
    if authorisation.revoked:
        return [ReasonCode.AUTHORISATION_REVOKED]
    reasons: list[ReasonCode] = []
    if authorisation.cooperative_approach_id != units.cooperative_approach_id:
        reasons.append(ReasonCode.AUTHORISATION_WRONG_COOPERATIVE_APPROACH)
    if purpose not in authorisation.purposes:
        reasons.append(ReasonCode.PURPOSE_NOT_AUTHORISED)
    if acquiring_party not in authorisation.authorised_parties:
        reasons.append(ReasonCode.PARTY_NOT_AUTHORISED)
    reasons += entity_refusals(authorisation, acquiring_entity)
    if not authorisation.covers_vintage(units.vintage):
        reasons.append(ReasonCode.OUTSIDE_MITIGATION_TIMEFRAME)
    if not authorisation.covers_use_on(on):
        reasons.append(ReasonCode.OUTSIDE_USE_TIMEFRAME)
    if authorisation.quantity_cap is not None and (
        counted_quantity + quantity > authorisation.quantity_cap
    ):
        reasons.append(ReasonCode.QUANTITY_CAP_EXCEEDED)
    return reasons


def entity_refusals(authorisation: Authorisation, entity: str | None) -> list[ReasonCode]:
    """An LoA that names entities authorises only those; a Party's own account (no
    entity) is always authorised. The same rule at a border, inside a registry and at use."""
    if (
        authorisation.authorised_entities
        and entity is not None
        and entity not in authorisation.authorised_entities
    ):
        return [ReasonCode.ENTITY_NOT_AUTHORISED]
    return []


def check_new_version(
    current: Authorisation | None, new: Authorisation, *, own_party: str
) -> list[ReasonCode]:
    """A new version follows the current one by exactly one and is this Party's own."""
    reasons: list[ReasonCode] = []
    if new.authorising_party != own_party:
        reasons.append(ReasonCode.AUTHORISATION_NOT_BY_THIS_PARTY)
    expected = 1 if current is None else current.version + 1
    if new.version != expected or (current is not None and current.revoked):
        reasons.append(ReasonCode.AUTHORISATION_VERSION_CONFLICT)
    if current is not None and current.cooperative_approach_id != new.cooperative_approach_id:
        reasons.append(ReasonCode.AUTHORISATION_WRONG_COOPERATIVE_APPROACH)
    return reasons
