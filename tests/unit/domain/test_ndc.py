"""The NDC configuration's rules and the three corresponding-adjustment methods, by hand.

Each method's test works one small ledger through by hand in its docstring; the
assertions are those hand-worked numbers, not a re-run of the code's formula.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from registry.domain.adjustments import (
    AdjustmentCause,
    CorrespondingAdjustment,
    balances_by_year_and_metric,
    first_transfer_adjustment,
    use_adjustment,
)
from registry.domain.blocks import BlockStatus, SerialBlock
from registry.domain.errors import ReasonCode
from registry.domain.ndc import (
    NDC_PERIOD_YEARS_MAX,
    CaMethod,
    CaSummary,
    NdcConfiguration,
    NdcLevel,
    NdcRecord,
    NdcType,
    YearSummary,
    check_ndc,
    rounded,
    summarise,
)
from tests.unit.application.support import approach
from tests.unit.domain.test_rules import UNITS

AT = datetime(2026, 3, 1, tzinfo=UTC)
GHG = "tCO2e"
FIRST = AdjustmentCause.FIRST_TRANSFER
USE = AdjustmentCause.USE_TOWARDS_NDC


def entry(year: int, quantity: int, cause: AdjustmentCause, party: str = "CHE") -> Any:
    return CorrespondingAdjustment(
        party=party,
        year=year,
        metric=GHG,
        quantity=quantity,
        cause=cause,
        first_identifier="CA0001-CHE01-CHE-000000001-2025",
        last_identifier="CA0001-CHE01-CHE-000000010-2025",
        recorded_at=AT,
    )


def levels(metric: str = GHG, **by_year: int | str) -> tuple[NdcLevel, ...]:
    return tuple(
        NdcLevel(int(year.removeprefix("y")), metric, Decimal(value))
        for year, value in by_year.items()
    )


def record(config: NdcConfiguration, party: str = "CHE") -> NdcRecord:
    assert check_ndc(config) == ()
    return NdcRecord(party=party, version=1, recorded_at=AT, configuration=config)


def rows(summary: CaSummary, metric: str = GHG) -> dict[int, YearSummary]:
    (found,) = (m for m in summary.metrics if m.metric == metric)
    return {row.year: row for row in found.years}


def column(summary: CaSummary, name: str) -> list[Any]:
    return [getattr(row, name) for row in rows(summary).values()]


def test_multi_year_ndc_applies_each_years_own_adjustment() -> None:
    """Multi-year NDC 2021-2025, GHG, annual method, with a trajectory.

    Ledger (CHE): 2022 first transfer +1000, use -300; 2024 first transfer +500,
    uses -200 and -100; 2019 first transfer +50 (before the period); a GHA entry
    (another Party's, ignored).

    Annual = first transferred + used:
      2021: 0; 2022: 1000 - 300 = 700; 2023: 0; 2024: 500 - 200 - 100 = 200; 2025: 0.
    Cumulative: 0, 700, 700, 900, 900; at the end of the period: 900.
    Applied (annual method) = annual: 0, 700, 0, 200, 0, none indicative.
    Outside the period: the 2019 entry, 50.
    Reported emissions 2022: 9200 -> adjusted balance 9200 + 700 = 9900.
    """
    config = NdcConfiguration(
        ndc_type=NdcType.MULTI_YEAR,
        period_start=2021,
        period_end=2025,
        metrics=(GHG,),
        method=CaMethod.ANNUAL,
        trajectory=levels(y2021=10000, y2022=9500, y2023=9000, y2024=8500, y2025=8000),
        reported_emissions=levels(y2022=9200),
    )
    ledger = [
        entry(2022, 1000, FIRST),
        entry(2022, -300, USE),
        entry(2024, 500, FIRST),
        entry(2024, -200, USE),
        entry(2024, -100, USE),
        entry(2019, 50, FIRST),
        entry(2022, -7777, USE, party="GHA"),
    ]
    summary = summarise(record(config), ledger)
    assert [m.metric for m in summary.metrics] == [GHG]
    assert column(summary, "first_transferred") == [0, 1000, 0, 500, 0]
    assert column(summary, "used") == [0, -300, 0, -300, 0]
    assert column(summary, "annual_adjustment") == [0, 700, 0, 200, 0]
    assert column(summary, "cumulative_adjustment") == [0, 700, 700, 900, 900]
    assert column(summary, "applied_adjustment") == [Decimal(q) for q in (0, 700, 0, 200, 0)]
    assert column(summary, "indicative") == [False] * 5
    trajectory = (10000, 9500, 9000, 8500, 8000)
    assert column(summary, "trajectory_level") == [Decimal(q) for q in trajectory]
    (metric,) = summary.metrics
    assert (metric.period_total, metric.outside_period) == (900, 50)
    assert rows(summary)[2022].adjusted_emissions_balance == Decimal("9900.000")
    assert rows(summary)[2023].adjusted_emissions_balance is None


def test_single_year_averaging_applies_the_periods_average_in_the_target_year() -> None:
    """Single-year NDC, target 2030, period 2021-2030 (10 years), averaging.

    Ledger (CHE): first transfers +3000 in 2023 and +1000 in 2025; a use -500 in 2026.
    Cumulative through the year, over the years elapsed since 2021 (inclusive):
      2021: 0/1 = 0;        2022: 0/2 = 0;         2023: 3000/3 = 1000;
      2024: 3000/4 = 750;   2025: 4000/5 = 800;    2026: 3500/6 = 583.333...;
      2027: 3500/7 = 500;   2028: 3500/8 = 437.5;  2029: 3500/9 = 388.888...;
      2030: 3500/10 = 350 (the target year: applied, not indicative).
    Rounded half to even to 3 places: 583.333, 388.889.
    Reported emissions 2030: 48000.5 -> adjusted balance 48000.5 + 350 = 48350.5.
    """
    config = NdcConfiguration(
        ndc_type=NdcType.SINGLE_YEAR,
        period_start=2021,
        period_end=2030,
        target_year=2030,
        metrics=(GHG,),
        method=CaMethod.AVERAGING,
        reported_emissions=levels(y2030="48000.5"),
    )
    ledger = [entry(2023, 3000, FIRST), entry(2025, 1000, FIRST), entry(2026, -500, USE)]
    summary = summarise(record(config), ledger)
    expected = ["0", "0", "1000", "750", "800", "583.333", "500", "437.5", "388.889", "350"]
    assert column(summary, "applied_adjustment") == [Decimal(q) for q in expected]
    assert column(summary, "indicative") == [True] * 9 + [False]
    assert column(summary, "annual_adjustment") == [0, 0, 3000, 0, 1000, -500, 0, 0, 0, 0]
    assert summary.metrics[0].period_total == 3500
    assert rows(summary)[2030].adjusted_emissions_balance == Decimal("48350.5")


def test_single_year_trajectory_applies_annual_adjustments_against_the_trajectory() -> None:
    """Single-year NDC, target 2030, period 2026-2030, trajectory method.

    Trajectory (entered): 50000, 48000, 46000, 44000, 42000.
    Ledger (CHE): use -2000 in 2027; first transfer +1500 in 2028; uses -4000 and
    -1000 in 2030.
    Annual = applied: 2026: 0; 2027: -2000; 2028: 1500; 2029: 0; 2030: -5000.
    Cumulative: 0, -2000, -500, -500, -5500.
    Reported emissions 2030: 46500 -> adjusted balance 46500 - 5000 = 41500, under
    the 2030 trajectory point of 42000.
    """
    config = NdcConfiguration(
        ndc_type=NdcType.SINGLE_YEAR,
        period_start=2026,
        period_end=2030,
        target_year=2030,
        metrics=(GHG,),
        method=CaMethod.TRAJECTORY,
        trajectory=levels(y2026=50000, y2027=48000, y2028=46000, y2029=44000, y2030=42000),
        reported_emissions=levels(y2030=46500),
    )
    ledger = [
        entry(2027, -2000, USE),
        entry(2028, 1500, FIRST),
        entry(2030, -4000, USE),
        entry(2030, -1000, USE),
    ]
    summary = summarise(record(config), ledger)
    assert column(summary, "applied_adjustment") == [Decimal(q) for q in (0, -2000, 1500, 0, -5000)]
    assert column(summary, "cumulative_adjustment") == [0, -2000, -500, -500, -5500]
    assert column(summary, "indicative") == [False] * 5
    target = rows(summary)[2030]
    assert (target.trajectory_level, target.adjusted_emissions_balance) == (
        Decimal(42000),
        Decimal(41500),
    )


def test_a_higher_is_better_metric_keeps_the_ledgers_reversed_sign() -> None:
    """Renewable MWh, higher is better; multi-year 2025-2026.

    CHE first-transfers 40 MWh of vintage 2025: the ledger records -40 (the
    indicator the Party may claim goes down). Reported 2025: 1000 MWh -> adjusted
    1000 - 40 = 960. A use of 10 MWh in 2026 (units acquired back) records +10.
    """
    mwh = approach(metric="MWh", metric_higher_is_better=True)
    units = SerialBlock("A", BlockStatus.HELD, 1, 40, replace(UNITS, metric="MWh"))
    used = SerialBlock("B", BlockStatus.HELD, 41, 50, replace(UNITS, metric="MWh"))
    config = NdcConfiguration(
        ndc_type=NdcType.MULTI_YEAR,
        period_start=2025,
        period_end=2026,
        metrics=("MWh",),
        method=CaMethod.ANNUAL,
        reported_emissions=levels("MWh", y2025=1000),
    )
    ledger = [
        first_transfer_adjustment("CHE", units, mwh, at=AT),
        use_adjustment("CHE", used, mwh, year_of_use=2026, at=AT),
    ]
    by_year = rows(summarise(record(config), ledger), "MWh")
    assert (by_year[2025].applied_adjustment, by_year[2026].applied_adjustment) == (
        Decimal(-40),
        Decimal(10),
    )
    assert by_year[2025].adjusted_emissions_balance == Decimal(960)


def test_a_metric_in_the_ledger_but_not_configured_is_still_summarised() -> None:
    config = NdcConfiguration(NdcType.MULTI_YEAR, 2025, 2026, ("MWh",), CaMethod.ANNUAL)
    summary = summarise(record(config), [entry(2025, 7, FIRST)])
    assert [m.metric for m in summary.metrics] == ["MWh", GHG]
    assert rows(summary)[2025].annual_adjustment == 7


def test_rounding_is_half_to_even_at_three_places() -> None:
    assert rounded(Fraction(1, 16)) == Decimal("0.062")  # 0.0625
    assert rounded(Fraction(3, 16)) == Decimal("0.188")  # 0.1875
    assert rounded(Fraction(-1, 3)) == Decimal("-0.333")


SINGLE = NdcConfiguration(
    ndc_type=NdcType.SINGLE_YEAR,
    period_start=2021,
    period_end=2030,
    target_year=2030,
    metrics=(GHG,),
    method=CaMethod.AVERAGING,
)
FULL_TRAJECTORY = tuple(NdcLevel(year, GHG, Decimal(1000)) for year in range(2021, 2031))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"period_start": 2031}, ReasonCode.NDC_INVALID_PERIOD),
        ({"period_start": 1990}, ReasonCode.NDC_INVALID_PERIOD),
        (
            {"period_start": 2030 - NDC_PERIOD_YEARS_MAX, "period_end": 2030},
            ReasonCode.NDC_INVALID_PERIOD,
        ),
        ({"metrics": ()}, ReasonCode.NDC_NO_METRIC),
        ({"target_year": 2029}, ReasonCode.NDC_INVALID_TARGET_YEAR),
        ({"target_year": None}, ReasonCode.NDC_INVALID_TARGET_YEAR),
        ({"ndc_type": NdcType.MULTI_YEAR}, ReasonCode.NDC_INVALID_TARGET_YEAR),
        ({"method": None}, ReasonCode.NDC_METHOD_MISMATCH),
        ({"method": CaMethod.ANNUAL}, ReasonCode.NDC_METHOD_MISMATCH),
        ({"trajectory": FULL_TRAJECTORY}, ReasonCode.NDC_METHOD_MISMATCH),
        ({"method": CaMethod.TRAJECTORY}, ReasonCode.NDC_TRAJECTORY_INCOMPLETE),
        (
            {"method": CaMethod.TRAJECTORY, "trajectory": FULL_TRAJECTORY[:-1]},
            ReasonCode.NDC_TRAJECTORY_INCOMPLETE,
        ),
        (
            {"reported_emissions": (NdcLevel(2031, GHG, Decimal(1)),)},
            ReasonCode.NDC_LEVEL_OUT_OF_SCOPE,
        ),
        (
            {"reported_emissions": (NdcLevel(2025, "MWh", Decimal(1)),)},
            ReasonCode.NDC_LEVEL_OUT_OF_SCOPE,
        ),
        (
            {"reported_emissions": (NdcLevel(2025, GHG, Decimal(1)),) * 2},
            ReasonCode.NDC_LEVEL_OUT_OF_SCOPE,
        ),
    ],
)
def test_a_bad_configuration_is_refused_with_its_reason(
    changes: dict[str, Any], reason: ReasonCode
) -> None:
    assert check_ndc(SINGLE) == ()
    assert reason in check_ndc(replace(SINGLE, **changes))


def test_good_configurations_of_each_kind_are_accepted() -> None:
    trajectory = replace(SINGLE, method=CaMethod.TRAJECTORY, trajectory=FULL_TRAJECTORY)
    multi = replace(SINGLE, ndc_type=NdcType.MULTI_YEAR, target_year=None, method=CaMethod.ANNUAL)
    assert check_ndc(trajectory) == ()
    assert check_ndc(multi) == ()
    assert check_ndc(replace(multi, trajectory=FULL_TRAJECTORY)) == ()
    assert check_ndc(replace(multi, trajectory=FULL_TRAJECTORY[1:])) == (
        ReasonCode.NDC_TRAJECTORY_INCOMPLETE,
    )


def test_the_ledgers_own_balances_are_sums_per_year_and_metric() -> None:
    """2025: +1000 - 300 = 700; 2024: +5; sorted by year, then metric."""
    ledger = [entry(2025, 1000, FIRST), entry(2025, -300, USE), entry(2024, 5, FIRST)]
    assert balances_by_year_and_metric(ledger) == {(2024, GHG): 5, (2025, GHG): 700}
    assert list(balances_by_year_and_metric(ledger)) == [(2024, GHG), (2025, GHG)]
