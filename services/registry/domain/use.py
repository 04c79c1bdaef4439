"""Use of units (towards an NDC or for OIMP) and where units may be held: one home.

A use is checked as a transfer is (check 7): the current version of the units'
authorisation must be in force, authorise the purpose, the using Party and the
holder's entity, cover the units' vintage in its mitigation timeframe, and cover
today in its use timeframe. On top, the year of use has
its own rules, each with its own reason code:

- not before the units' vintage: a mitigation outcome cannot be used for a year
  before it occurred;
- inside the authorisation's use timeframe (taken in whole years);
- for use towards an NDC, inside the using Party's NDC period, when the Party has
  one configured (``ndc_period``; None skips this rule).

A Party's own units that were never authorised are not ITMOs; it may still use them
towards its own NDC at home (no corresponding adjustment follows), never for OIMP.
"""

from __future__ import annotations

from datetime import date

from registry.domain.authorisations import Authorisation, Purpose, entity_refusals
from registry.domain.blocks import BlockAttributes
from registry.domain.errors import ReasonCode

# A Party's NDC period as (first year, last year), both included.
NdcPeriod = tuple[int, int]


def check_use(
    authorisation: Authorisation | None,
    units: BlockAttributes,
    *,
    purpose: Purpose,
    using_party: str,
    holder_entity: str | None,
    on: date,
    year_of_use: int,
    ndc_period: NdcPeriod | None,
) -> list[ReasonCode]:
    """Every reason the holder may not use these units for ``purpose`` in ``year_of_use``.

    The authorisation's reasons come first, in the order a transfer gives them, then
    the year-of-use reasons.
    """
    year_reasons = check_year_of_use(
        authorisation, units, purpose=purpose, year_of_use=year_of_use, ndc_period=ndc_period
    )
    if units.authorisation_id is None:
        if purpose is Purpose.NDC and units.first_transferring_party == using_party:
            return year_reasons  # the Party's own, never-authorised units, used at home
        return [ReasonCode.NO_AUTHORISATION, *year_reasons]
    if authorisation is None or authorisation.authorisation_id != units.authorisation_id:
        return [ReasonCode.NO_AUTHORISATION, *year_reasons]
    if authorisation.revoked:
        return [ReasonCode.AUTHORISATION_REVOKED, *year_reasons]
    reasons: list[ReasonCode] = []
    if purpose not in authorisation.purposes:
        reasons.append(ReasonCode.PURPOSE_NOT_AUTHORISED)
    # The authorising Party uses its own units at home; anyone else must be authorised.
    if (
        using_party != authorisation.authorising_party
        and using_party not in authorisation.authorised_parties
    ):
        reasons.append(ReasonCode.PARTY_NOT_AUTHORISED)
    reasons += entity_refusals(authorisation, holder_entity)
    if not authorisation.covers_vintage(units.vintage):
        reasons.append(ReasonCode.OUTSIDE_MITIGATION_TIMEFRAME)
    if not authorisation.covers_use_on(on):
        reasons.append(ReasonCode.OUTSIDE_USE_TIMEFRAME)
    return reasons + year_reasons


def check_year_of_use(
    authorisation: Authorisation | None,
    units: BlockAttributes,
    *,
    purpose: Purpose,
    year_of_use: int,
    ndc_period: NdcPeriod | None,
) -> list[ReasonCode]:
    """The year-of-use rules alone, each with its own reason code."""
    reasons: list[ReasonCode] = []
    if year_of_use < units.vintage:
        reasons.append(ReasonCode.YEAR_OF_USE_BEFORE_VINTAGE)
    if authorisation is not None and not authorisation.covers_use_in_year(year_of_use):
        reasons.append(ReasonCode.YEAR_OF_USE_OUTSIDE_USE_TIMEFRAME)
    if (
        purpose is Purpose.NDC
        and ndc_period is not None
        and not ndc_period[0] <= year_of_use <= ndc_period[1]
    ):
        reasons.append(ReasonCode.YEAR_OF_USE_OUTSIDE_NDC_PERIOD)
    return reasons


def check_holder(
    authorisation: Authorisation | None, units: BlockAttributes, *, holder_entity: str | None
) -> list[ReasonCode]:
    """Whether an account's holder may hold these units: the LoA's entity list follows
    the units to every account, in every registry, not only across borders."""
    if authorisation is None or authorisation.authorisation_id != units.authorisation_id:
        return []
    return entity_refusals(authorisation, holder_entity)
