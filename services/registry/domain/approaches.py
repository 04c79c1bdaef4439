"""Cooperative approaches: who takes part and which units they cover."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from a6wire.identifiers import VINTAGE_MAX, VINTAGE_MIN, is_cooperative_approach_id, is_party_code
from registry.domain.errors import DomainError, ReasonCode

GHG_METRIC = "tCO2e"
OMGE_SHARE_MIN_EXCLUSIVE = Decimal(0)
OMGE_SHARE_MAX_EXCLUSIVE = Decimal(1)


@dataclass(frozen=True, slots=True)
class CooperativeApproach:
    """An Article 6.2 cooperative approach as this registry records it.

    An empty ``sectors`` or ``activity_types`` set means the approach does not
    restrict that attribute.
    """

    cooperative_approach_id: str
    participating_parties: frozenset[str]
    vintage_from: int
    vintage_to: int
    in_force_from: date
    in_force_until: date | None = None
    sectors: frozenset[str] = frozenset()
    activity_types: frozenset[str] = frozenset()
    metric: str = GHG_METRIC
    # For a non-GHG indicator where a higher value is better, adjustments reverse sign.
    metric_higher_is_better: bool = False
    omge_share: Decimal | None = None
    name: str = ""
    # For a non-GHG metric: tCO2e per unit of the metric, which the AEF reports as the
    # conversion factor next to each quantity. A GHG metric converts at exactly 1.
    tco2e_per_unit: Decimal | None = None

    def __post_init__(self) -> None:
        if not is_cooperative_approach_id(self.cooperative_approach_id) or not all(
            is_party_code(party) for party in self.participating_parties
        ):
            raise DomainError(
                ReasonCode.MALFORMED_IDENTIFIER,
                f"{self.cooperative_approach_id!r} or its Parties are malformed",
            )
        if len(self.participating_parties) < 2:
            raise DomainError(
                ReasonCode.PARTY_NOT_IN_COOPERATIVE_APPROACH,
                "a cooperative approach needs at least two participating Parties",
            )
        if not VINTAGE_MIN <= self.vintage_from <= self.vintage_to <= VINTAGE_MAX or (
            self.in_force_until is not None and self.in_force_until < self.in_force_from
        ):
            raise DomainError(ReasonCode.INVALID_TIMEFRAME, "vintages or dates are out of order")
        if not self.metric:
            raise DomainError(ReasonCode.MALFORMED_BLOCK, "a cooperative approach names a metric")
        if self.omge_share is not None and not (
            OMGE_SHARE_MIN_EXCLUSIVE < self.omge_share < OMGE_SHARE_MAX_EXCLUSIVE
        ):
            raise DomainError(
                ReasonCode.INVALID_OMGE_SHARE, f"OMGE share {self.omge_share} is not in (0, 1)"
            )

        if self.tco2e_per_unit is not None and (
            self.tco2e_per_unit <= 0 or self.metric == GHG_METRIC
        ):
            raise DomainError(
                ReasonCode.MALFORMED_BLOCK,
                "a conversion factor is positive, and only for a non-GHG metric",
            )

    @property
    def conversion_factor(self) -> Decimal | None:
        """tCO2e per unit of the metric; None when a non-GHG approach has not stated one."""
        return Decimal(1) if self.metric == GHG_METRIC else self.tco2e_per_unit

    def is_in_force(self, on: date) -> bool:
        return self.in_force_from <= on and (
            self.in_force_until is None or on <= self.in_force_until
        )

    def covers(self, *, vintage: int, sector: str, activity_type: str, metric: str) -> bool:
        return (
            self.vintage_from <= vintage <= self.vintage_to
            and (not self.sectors or sector in self.sectors)
            and (not self.activity_types or activity_type in self.activity_types)
            and metric == self.metric
        )


def check_cooperative_approach(
    approach: CooperativeApproach | None,
    *,
    parties: Iterable[str],
    vintage: int,
    sector: str,
    activity_type: str,
    metric: str,
    on: date,
) -> list[ReasonCode]:
    """Check 8: the Parties share this approach, it is in force and covers the units."""
    if approach is None:
        return [ReasonCode.NOT_COVERED_BY_COOPERATIVE_APPROACH]
    reasons: list[ReasonCode] = []
    if not set(parties) <= approach.participating_parties:
        reasons.append(ReasonCode.PARTY_NOT_IN_COOPERATIVE_APPROACH)
    if not approach.is_in_force(on):
        reasons.append(ReasonCode.COOPERATIVE_APPROACH_NOT_IN_FORCE)
    if not approach.covers(
        vintage=vintage, sector=sector, activity_type=activity_type, metric=metric
    ):
        reasons.append(ReasonCode.NOT_COVERED_BY_COOPERATIVE_APPROACH)
    return reasons
