"""Long simulation campaigns from the command line.

    python -m tests.sim.run --seeds 100000 --start 0 [--variant correct] [--workers N]

Prints every failing seed with its first violations; replay one with
``--seeds 1 --start <seed> --workers 1``. Exits non-zero if any seed failed.
"""

from __future__ import annotations

import argparse
import sys

from tests.sim.broken import VARIANTS
from tests.sim.harness import timed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=2_000, help="how many seeds")
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="correct")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: CPUs)")
    arguments = parser.parse_args(argv)
    seeds = range(arguments.start, arguments.start + arguments.seeds)
    results, seconds = timed(seeds, variant_name=arguments.variant, workers=arguments.workers)
    failing = [result for result in results if result.violations]
    for result in failing:
        print(f"seed {result.seed} FAILED:")
        for violation in result.violations[:5]:
            print(f"    {violation}")
    transfers = sum(result.transfers for result in results)
    commits = sum(result.commits for result in results)
    events = sum(result.events for result in results)
    print(
        f"{len(results)} seeds from {arguments.start} ({arguments.variant}): "
        f"{len(failing)} failing, {transfers} transfers ({commits} committed), "
        f"{events} events, {seconds:.1f} s"
    )
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
