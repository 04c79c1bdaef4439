"""Running seeds: one, or many in parallel worker processes."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from a6wire.messages import Outcome
from tests.sim import checker
from tests.sim.world import Simulation, Variant

SEEDS_PER_TASK = 50


@dataclass(frozen=True)
class SeedResult:
    seed: int
    violations: tuple[str, ...]
    events: int
    transfers: int
    commits: int


def run_seed(
    seed: int, variant: Variant | None = None, *, hostile_in_approach: bool = False
) -> SeedResult:
    """Run one seed; the same seed and variant always give the same result."""
    sim = Simulation(seed, variant, hostile_in_approach=hostile_in_approach)
    sim.continuous_checks.append(checker.check_continuously)
    sim.run()
    outcomes = checker.first_genuine_outcomes(sim)
    commits = sum(1 for key in sim.transfers if outcomes.get(key) is Outcome.COMMIT)
    return SeedResult(seed, tuple(sim.violations), sim.events_run, len(sim.transfers), commits)


def _run_many(seeds: list[int], variant_name: str) -> list[SeedResult]:
    from tests.sim.broken import VARIANTS

    variant = VARIANTS[variant_name]
    return [run_seed(seed, variant) for seed in seeds]


def run_seeds(
    seeds: Iterable[int], *, variant_name: str = "correct", workers: int | None = None
) -> list[SeedResult]:
    seeds = list(seeds)
    workers = workers or os.cpu_count() or 1
    chunks = [seeds[i : i + SEEDS_PER_TASK] for i in range(0, len(seeds), SEEDS_PER_TASK)]
    if workers == 1 or len(chunks) == 1:
        return [result for chunk in chunks for result in _run_many(chunk, variant_name)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = pool.map(_run_many, chunks, [variant_name] * len(chunks))
        return [result for chunk in results for result in chunk]


def timed(seeds: Iterable[int], **kwargs: object) -> tuple[list[SeedResult], float]:
    started = time.perf_counter()
    results = run_seeds(seeds, **kwargs)  # type: ignore[arg-type]
    return results, time.perf_counter() - started
