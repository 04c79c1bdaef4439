"""The simulation campaigns over the production transfer service: the code must
never break an invariant, with or without hostile members, and each
deliberately broken variant must be caught."""

from __future__ import annotations

import os

import pytest

from tests.sim.broken import VARIANTS
from tests.sim.harness import run_seed, run_seeds

# Sized so that the sim tests of ``make test`` take about 10 s on two cores.
QUICK_SEEDS = 200
# The long campaign's size; CI runs a bounded one (A6_SIM_SLOW_SEEDS in .ci/run).
SLOW_SEEDS = int(os.environ.get("A6_SIM_SLOW_SEEDS", "50000"))
# The slowest campaign speed allowed before the slow test times out; about 13
# seeds/s were measured on two busy cores with
# ``python -m tests.sim.run --seeds 10000 --start 200 --workers 2``.
SLOW_SEEDS_PER_S_MIN = 4
SLOW_TIMEOUT_S = max(3_600, SLOW_SEEDS // SLOW_SEEDS_PER_S_MIN)
# Seeds on which each broken variant is caught while the production code passes
# (found with run_seeds over 0..199 when the unit log and the index joined the
# simulation, which changed every seed's draws; last_decision_wins needs a second
# valid decision for one transfer, commit_before_readback a participant's ABORT
# appended before the coordinator's COMMIT: both are rare).
BROKEN_VARIANT_SEEDS = {
    "last_decision_wins": (119, 120, 139),
    "commit_before_readback": (120,),
    "accepts_unverified": (10, 14, 17),
    "index_blind_to_decisions": (1, 3, 4),
}

# Defect 1 (issue 8): the receiver's reservation is keyed by transfer id alone, so
# a hostile member's PREPARE reusing an honest transfer's id is answered YES with
# no validation, and its own ABORT or COMMIT then releases or finalises the honest
# transfer's hold. Seed 217: the hostile ABORT releases the hold, the honest COMMIT
# wins, the units are lost. Seed 69: the hostile COMMIT credits the units while the
# honest transfer aborts, so the serial is held in two registries.
DEFECT_1_SEEDS = (69, 217)
# With hostile members made parties of the cooperative approach, only custody
# (PROTOCOL.md invariant 8) can refuse their PREPAREs for serials held elsewhere or
# never issued. Without the custody check (the ``no_custody`` variant) these seeds
# break: on 0 and 26 a hostile COMMIT credits serials another Party holds (the same
# serial in two registries), on 17 those and serials past the last one issued, on 53
# serials of the attacker's own registry, which never announced an issuance.
CUSTODY_SEEDS = (0, 17, 26, 53)


@pytest.mark.sim
def test_quick_campaign_finds_no_violation() -> None:
    results = run_seeds(range(QUICK_SEEDS))
    failing = {result.seed: result.violations[:3] for result in results if result.violations}
    assert failing == {}
    # The campaign is only meaningful if transfers both commit and abort.
    assert sum(result.commits for result in results) > QUICK_SEEDS
    assert sum(result.transfers - result.commits for result in results) > QUICK_SEEDS // 2


@pytest.mark.sim
@pytest.mark.parametrize("seed", DEFECT_1_SEEDS)
def test_a_reused_transfer_id_changes_nothing(seed: int) -> None:
    assert run_seed(seed).violations == ()


@pytest.mark.sim
@pytest.mark.parametrize("seed", CUSTODY_SEEDS)
def test_a_hostile_member_of_the_approach_gets_no_yes_for_serials_held_elsewhere(
    seed: int,
) -> None:
    assert run_seed(seed, hostile_in_approach=True).violations == ()


@pytest.mark.sim
@pytest.mark.parametrize("seed", CUSTODY_SEEDS)
def test_without_the_custody_check_the_custody_seeds_break(seed: int) -> None:
    """The seeds above are ones where only custody stands between the attack and a ledger."""
    violations = run_seed(seed, VARIANTS["no_custody"], hostile_in_approach=True).violations
    assert any(not violation.startswith("SOVEREIGNTY") for violation in violations), violations


@pytest.mark.sim
def test_a_seed_replays_exactly() -> None:
    assert run_seed(12345) == run_seed(12345)


@pytest.mark.sim
@pytest.mark.parametrize("variant_name", sorted(BROKEN_VARIANT_SEEDS))
def test_broken_variants_are_caught(variant_name: str) -> None:
    seeds = BROKEN_VARIANT_SEEDS[variant_name]
    correct = {result.seed: result for result in run_seeds(seeds)}
    results = run_seeds(seeds, variant_name=variant_name)
    # Caught on a seed where the production code passes: the variant's own mistake.
    assert any(result.violations and not correct[result.seed].violations for result in results)


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.timeout(SLOW_TIMEOUT_S)
def test_long_campaign_finds_no_violation() -> None:
    results = run_seeds(range(QUICK_SEEDS, QUICK_SEEDS + SLOW_SEEDS))
    assert len(results) == SLOW_SEEDS
    assert [result.seed for result in results if result.violations] == []
