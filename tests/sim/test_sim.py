"""The simulation campaigns: the correct core must never break an invariant, and
each deliberately broken variant must be caught."""

from __future__ import annotations

import os

import pytest

from tests.sim.harness import run_seed, run_seeds

QUICK_SEEDS = 2_000
# The long campaign's size; CI runs a bounded one (A6_SIM_SLOW_SEEDS in .ci/run).
SLOW_SEEDS = int(os.environ.get("A6_SIM_SLOW_SEEDS", "50000"))
BROKEN_SEEDS = 400


@pytest.mark.sim
def test_quick_campaign_finds_no_violation() -> None:
    results = run_seeds(range(QUICK_SEEDS))
    failing = {result.seed: result.violations[:3] for result in results if result.violations}
    assert failing == {}
    # The campaign is only meaningful if transfers both commit and abort.
    assert sum(result.commits for result in results) > QUICK_SEEDS
    assert sum(result.transfers - result.commits for result in results) > QUICK_SEEDS // 2


@pytest.mark.sim
def test_a_seed_replays_exactly() -> None:
    assert run_seed(12345) == run_seed(12345)


@pytest.mark.sim
@pytest.mark.parametrize(
    "variant_name", ["last_decision_wins", "commit_before_readback", "accepts_unverified"]
)
def test_broken_variants_are_caught(variant_name: str) -> None:
    results = run_seeds(range(BROKEN_SEEDS), variant_name=variant_name)
    assert any(result.violations for result in results)


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.timeout(3_600)
def test_long_campaign_finds_no_violation() -> None:
    results = run_seeds(range(QUICK_SEEDS, QUICK_SEEDS + SLOW_SEEDS))
    assert len(results) == SLOW_SEEDS
    assert [result.seed for result in results if result.violations] == []
