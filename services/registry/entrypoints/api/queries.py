"""Read-only views the application's query handlers do not provide (yet).

Each opens a unit of work and leaves it without commit, which rolls back: a
read can never write by accident.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from registry.application.ports import Clock, UnitOfWork
from registry.domain.blocks import BlockStatus

# Block statuses summed into the public holdings table, by column. RESERVED
# units are still held here until a cross-border transfer commits.
_HOLDINGS_COLUMNS = {
    BlockStatus.HELD: "held",
    BlockStatus.RESERVED: "held",
    BlockStatus.RETIRED: "retired",
    BlockStatus.CANCELLED: "cancelled",
}


@dataclass(frozen=True)
class HoldingsTotal:
    cooperative_approach_id: str
    vintage: int
    metric: str
    held: int
    retired: int
    cancelled: int


def holdings_totals(
    uow: UnitOfWork, clock: Clock, cooperative_approach_id: str | None, vintage: int | None
) -> list[HoldingsTotal]:
    """Units per cooperative approach and vintage, summed over every account.

    The public transparency view: totals only, never an account or holder.
    """
    sums: defaultdict[tuple[str, int, str], dict[str, int]] = defaultdict(
        lambda: {"held": 0, "retired": 0, "cancelled": 0}
    )
    with uow:
        for account in uow.accounts.list():
            for block in uow.blocks.list_account(account.account_id):
                column = _HOLDINGS_COLUMNS.get(block.status)
                attributes = block.attributes
                if (
                    column is None
                    or cooperative_approach_id not in (None, attributes.cooperative_approach_id)
                    or vintage not in (None, attributes.vintage)
                ):
                    continue
                key = (attributes.cooperative_approach_id, attributes.vintage, attributes.metric)
                sums[key][column] += block.quantity
    return [
        HoldingsTotal(approach, year, metric, **columns)
        for (approach, year, metric), columns in sorted(sums.items())
    ]
