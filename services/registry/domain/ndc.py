"""The Party's NDC as the corresponding-adjustment methods need it, and what each method reports.

Decision 2/CMA.3, annex, chapter III.B (paras 7-8), as this module reads it:

- A Party with a **multi-year** NDC applies corresponding adjustments
  *annually*: for each year of the NDC implementation period it adds the ITMOs
  first transferred and subtracts the ITMOs used in that year, and it reports
  the *cumulative* adjustment at the end of the period. (Text.)
- A Party with a **single-year** NDC chooses one of two methods (text):

  * **Trajectory/budget** (``TRAJECTORY``): it indicates a multi-year emissions
    trajectory, trajectories or budget over the implementation period,
    consistent with the NDC, and applies the annual adjustments of each year
    against it, as a multi-year NDC does.
  * **Averaging** (``AVERAGING``): it applies, in its NDC (target) year, an
    adjustment equal to the cumulative amount of ITMOs first transferred and
    used over the implementation period divided by the number of elapsed years
    in that period; in every other year it reports the same average as
    *indicative* only.

Where this module interprets rather than follows the text (each marked
"Interpretation" where it is decided):

- The target year of a single-year NDC is the last year of its implementation
  period (the text ties the average to "the NDC implementation period"; a
  target year inside the period would leave years after it unaccounted).
- The indicative average of an interim year ``y`` is the cumulative amount from
  the start of the period through ``y`` divided by the years elapsed through
  ``y`` (``y - start + 1``): the text's "number of elapsed years", applied as the
  period unfolds.
- A budget is entered as its annual trajectory; the cumulative trajectory to
  the end of the period is the budget.
- The node does not hold the Party's inventory. If the Party enters its
  reported emissions for a year, the summary also gives the adjusted emissions
  balance (reported emissions plus the applied adjustment); otherwise it gives
  the adjustment alone.

Signs are the ledger's (``registry.domain.adjustments``): a first transfer adds
to the transferring Party's balance, a use subtracts from the using Party's, and
a "higher is better" non-GHG metric has both reversed when the entry is made.
So every number here is a plain sum of signed entries, for every metric, and
"adjusted balance = reported level + applied adjustment" holds for all of them.

Averages are exact fractions until the end; they are rounded once, half to
even, to ``SUMMARY_DECIMAL_PLACES`` places.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from a6wire.identifiers import VINTAGE_MAX, VINTAGE_MIN
from registry.domain.adjustments import AdjustmentCause, CorrespondingAdjustment
from registry.domain.errors import ReasonCode

# An implementation period is a few years (the first NDCs run 2021-2030); 50
# bounds the per-year tables a summary builds without refusing any real NDC.
NDC_PERIOD_YEARS_MAX = 50
# GHG plus the few non-GHG indicators an NDC may state (renewable MWh, ...).
NDC_METRICS_MAX = 20
# One level per year and metric at most.
NDC_LEVELS_MAX = NDC_PERIOD_YEARS_MAX * NDC_METRICS_MAX
# Averages (tCO2e or a metric's unit) are reported to the kilogram.
SUMMARY_DECIMAL_PLACES = 3
_SCALE = 10**SUMMARY_DECIMAL_PLACES


class NdcType(StrEnum):
    SINGLE_YEAR = "SINGLE_YEAR"
    MULTI_YEAR = "MULTI_YEAR"


class CaMethod(StrEnum):
    """How the adjustments of the period are applied to the Party's emissions balance."""

    ANNUAL = "ANNUAL"  # multi-year NDC: each year its own adjustments
    TRAJECTORY = "TRAJECTORY"  # single-year NDC: annual, against an indicative trajectory
    AVERAGING = "AVERAGING"  # single-year NDC: the period's average, in the target year


_METHODS_OF: dict[NdcType, frozenset[CaMethod]] = {
    NdcType.MULTI_YEAR: frozenset({CaMethod.ANNUAL}),
    NdcType.SINGLE_YEAR: frozenset({CaMethod.TRAJECTORY, CaMethod.AVERAGING}),
}


@dataclass(frozen=True, slots=True)
class NdcLevel:
    """One year's value of one metric: a trajectory point or a reported emissions level."""

    year: int
    metric: str
    level: Decimal


@dataclass(frozen=True, slots=True)
class NdcConfiguration:
    """What the Party set once: the NDC's type, period, method and metrics.

    ``trajectory`` is required, complete, for ``TRAJECTORY``; optional (but then
    complete) for a multi-year NDC; refused for ``AVERAGING``. ``reported_emissions``
    are optional figures from the Party's inventory, any years of the period.
    """

    ndc_type: NdcType
    period_start: int
    period_end: int
    metrics: tuple[str, ...]
    method: CaMethod | None = None
    target_year: int | None = None
    trajectory: tuple[NdcLevel, ...] = ()
    reported_emissions: tuple[NdcLevel, ...] = ()

    @property
    def years(self) -> range:
        return range(self.period_start, self.period_end + 1)


@dataclass(frozen=True, slots=True)
class NdcRecord:
    """One version of the Party's NDC configuration; a change is a new version."""

    party: str
    version: int
    recorded_at: datetime
    configuration: NdcConfiguration


def check_ndc(ndc: NdcConfiguration) -> tuple[ReasonCode, ...]:
    """Every reason the configuration cannot be used; empty when it can."""
    reasons: list[ReasonCode] = []
    period_ok = (
        VINTAGE_MIN <= ndc.period_start <= ndc.period_end <= VINTAGE_MAX
        and len(ndc.years) <= NDC_PERIOD_YEARS_MAX
    )
    if not period_ok:
        reasons.append(ReasonCode.NDC_INVALID_PERIOD)
    if not ndc.metrics or len(ndc.metrics) > NDC_METRICS_MAX:
        reasons.append(ReasonCode.NDC_NO_METRIC)
    # Interpretation: a single-year NDC's target year closes its implementation
    # period; a multi-year NDC has no single target year.
    wanted_target = ndc.period_end if ndc.ndc_type is NdcType.SINGLE_YEAR else None
    if ndc.target_year != wanted_target:
        reasons.append(ReasonCode.NDC_INVALID_TARGET_YEAR)
    if ndc.method not in _METHODS_OF[ndc.ndc_type] or (
        ndc.method is CaMethod.AVERAGING and ndc.trajectory
    ):
        reasons.append(ReasonCode.NDC_METHOD_MISMATCH)
    levels = (*ndc.trajectory, *ndc.reported_emissions)
    if len(levels) > NDC_LEVELS_MAX or not (
        _levels_in_scope(ndc, ndc.trajectory) and _levels_in_scope(ndc, ndc.reported_emissions)
    ):
        reasons.append(ReasonCode.NDC_LEVEL_OUT_OF_SCOPE)
    trajectory_wanted = ndc.method is CaMethod.TRAJECTORY or bool(ndc.trajectory)
    if period_ok and trajectory_wanted and not _complete(ndc, ndc.trajectory):
        reasons.append(ReasonCode.NDC_TRAJECTORY_INCOMPLETE)
    return tuple(reasons)


def _levels_in_scope(ndc: NdcConfiguration, levels: Sequence[NdcLevel]) -> bool:
    """Each level is for a year of the period and a listed metric, and appears once."""
    keys = [(level.year, level.metric) for level in levels]
    return len(set(keys)) == len(keys) and all(
        year in ndc.years and metric in ndc.metrics for year, metric in keys
    )


def _complete(ndc: NdcConfiguration, levels: Sequence[NdcLevel]) -> bool:
    """Every year of the period has a level for every listed metric."""
    keys = {(level.year, level.metric) for level in levels}
    return all((year, metric) in keys for year in ndc.years for metric in ndc.metrics)


# ---------------------------------------------------------------------------
# The summary: per metric, per year of the period


@dataclass(frozen=True, slots=True)
class YearSummary:
    """One year of one metric.

    - ``first_transferred``: the year's first-transfer entries, as signed.
    - ``used``: the year's use entries, as signed (negative for a GHG metric).
    - ``annual_adjustment``: their sum, the year's net corresponding adjustment.
    - ``cumulative_adjustment``: the annual adjustments from the period's start
      through this year.
    - ``applied_adjustment``: what the Party's method applies to this year's
      emissions level; ``indicative`` when the averaging method reports it for a
      year other than the target year (the text asks it reported, not applied).
    - ``trajectory_level``, ``reported_emissions``: what the Party entered.
    - ``adjusted_emissions_balance``: ``reported_emissions + applied_adjustment``
      when the Party entered its emissions for the year.
    """

    year: int
    metric: str
    first_transferred: int
    used: int
    annual_adjustment: int
    cumulative_adjustment: int
    applied_adjustment: Decimal
    indicative: bool
    trajectory_level: Decimal | None
    reported_emissions: Decimal | None
    adjusted_emissions_balance: Decimal | None


@dataclass(frozen=True, slots=True)
class MetricSummary:
    """One metric over the period.

    ``period_total`` is the cumulative adjustment at the end of the period (the
    multi-year NDC's end-of-period figure, the averaging method's numerator).
    ``outside_period`` sums the entries of years outside the period: they are in
    the ledger and in no year above, and the summary says so rather than drop them.
    """

    metric: str
    years: tuple[YearSummary, ...]
    period_total: int
    outside_period: int


@dataclass(frozen=True, slots=True)
class CaSummary:
    party: str
    ndc: NdcRecord
    metrics: tuple[MetricSummary, ...]


def summarise(ndc: NdcRecord, entries: Iterable[CorrespondingAdjustment]) -> CaSummary:
    """The per-year, per-metric summary the Party reports, by its configured method.

    Entries of other Parties are ignored: a node keeps its own Party's ledger.
    """
    config = ndc.configuration
    first: defaultdict[tuple[str, int], int] = defaultdict(int)
    used: defaultdict[tuple[str, int], int] = defaultdict(int)
    metrics = set(config.metrics)
    for entry in entries:
        if entry.party != ndc.party:
            continue
        metrics.add(entry.metric)
        sums = first if entry.cause is AdjustmentCause.FIRST_TRANSFER else used
        sums[(entry.metric, entry.year)] += entry.quantity
    return CaSummary(
        party=ndc.party,
        ndc=ndc,
        metrics=tuple(_metric_summary(config, metric, first, used) for metric in sorted(metrics)),
    )


def _metric_summary(
    config: NdcConfiguration,
    metric: str,
    first: dict[tuple[str, int], int],
    used: dict[tuple[str, int], int],
) -> MetricSummary:
    trajectory = _levels_of(config.trajectory, metric)
    emissions = _levels_of(config.reported_emissions, metric)
    years: list[YearSummary] = []
    cumulative = 0
    for year in config.years:
        first_transferred = first.get((metric, year), 0)
        used_ = used.get((metric, year), 0)
        annual = first_transferred + used_
        cumulative += annual
        applied, indicative = applied_adjustment(config, year, annual, cumulative)
        reported = emissions.get(year)
        years.append(
            YearSummary(
                year=year,
                metric=metric,
                first_transferred=first_transferred,
                used=used_,
                annual_adjustment=annual,
                cumulative_adjustment=cumulative,
                applied_adjustment=rounded(applied),
                indicative=indicative,
                trajectory_level=trajectory.get(year),
                reported_emissions=reported,
                adjusted_emissions_balance=(
                    None if reported is None else rounded(Fraction(reported) + applied)
                ),
            )
        )
    outside = sum(
        quantity
        for sums in (first, used)
        for (metric_, year), quantity in sums.items()
        if metric_ == metric and year not in config.years
    )
    return MetricSummary(
        metric=metric, years=tuple(years), period_total=cumulative, outside_period=outside
    )


def applied_adjustment(
    config: NdcConfiguration, year: int, annual: int, cumulative: int
) -> tuple[Fraction, bool]:
    """The adjustment the method applies to ``year``, and whether it is only indicative.

    ``annual`` is the year's net adjustment; ``cumulative`` the net from the
    period's start through ``year``.
    """
    if config.method is CaMethod.AVERAGING:
        # Text: cumulative ITMOs over the period / elapsed years, applied in the
        # NDC year. Interpretation: in interim years, the average so far, indicative.
        elapsed = year - config.period_start + 1
        return Fraction(cumulative, elapsed), year != config.target_year
    # Text: ANNUAL (multi-year) and TRAJECTORY (single-year) apply each year's own.
    return Fraction(annual), False


def rounded(value: Fraction) -> Decimal:
    """A summary figure: exact until here, then half-to-even to SUMMARY_DECIMAL_PLACES."""
    # round() of a Fraction is exact and rounds half to even.
    return Decimal(round(value * _SCALE)).scaleb(-SUMMARY_DECIMAL_PLACES)


def _levels_of(levels: Iterable[NdcLevel], metric: str) -> dict[int, Decimal]:
    return {level.year: level.level for level in levels if level.metric == metric}
