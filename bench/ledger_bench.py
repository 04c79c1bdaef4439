"""Ledger benchmark on SQLite: issue many blocks through the handler, then partial transfers.

Defaults: 100,000 blocks of 100 units (10 million units), issued through
``issue_units`` in batches of its per-command maximum, then 1,000 internal
transfers of a quantity that spans blocks and splits the last one. Prints the
timings and the database size as JSON.

    .venv/bin/python bench/ledger_bench.py [--blocks N] [--units-per-block N]
        [--transfers N] [--database PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from registry.adapters.database import make_engine, upgrade_database
from registry.adapters.unit_of_work import SqlAlchemyUnitOfWork
from registry.application import handlers
from registry.application.commands import (
    InitialiseRegistry,
    IssuanceLine,
    IssueUnits,
    OpenAccount,
    RecordAuthorisation,
    RegisterCooperativeApproach,
    TransferInternally,
)
from registry.domain.approaches import CooperativeApproach
from registry.domain.authorisations import Authorisation, Purpose
from registry.domain.selection import QuantitySelection

BLOCKS_DEFAULT = 100_000
UNITS_PER_BLOCK_DEFAULT = 100
TRANSFERS_DEFAULT = 1_000
# 2.5 blocks per transfer: two whole blocks move and a third is split.
TRANSFER_BLOCKS_SPANNED = 2.5


class FixedClock:
    def now(self) -> datetime:
        return datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def set_up(uow: SqlAlchemyUnitOfWork, clock: FixedClock) -> None:
    handlers.initialise_registry(uow, clock, InitialiseRegistry("CHE", "CHE01"))
    handlers.register_cooperative_approach(
        uow,
        clock,
        RegisterCooperativeApproach(
            CooperativeApproach("CA0001", frozenset({"CHE", "GHA"}), 2021, 2030, date(2021, 1, 1))
        ),
    )
    handlers.record_authorisation(
        uow,
        clock,
        RecordAuthorisation(
            Authorisation(
                "LOA-1",
                1,
                "CHE",
                date(2025, 1, 1),
                "CA0001",
                frozenset({"GHA"}),
                frozenset({Purpose.NDC}),
            )
        ),
    )
    for account_id in ("CHE-A", "CHE-B"):
        handlers.open_account(uow, clock, OpenAccount(account_id))


def issue(uow: SqlAlchemyUnitOfWork, clock: FixedClock, blocks: int, units: int) -> float:
    batch = handlers.ISSUANCE_LINES_PER_COMMAND_MAX
    line = IssuanceLine(units, "CA0001", 2025, "energy", "cookstoves", "ER", "AR5", "LOA-1")
    started = time.perf_counter()
    for start in range(0, blocks, batch):
        count = min(batch, blocks - start)
        handlers.issue_units(uow, clock, IssueUnits("CHE-A", (line,) * count))
    return time.perf_counter() - started


def transfer(
    uow: SqlAlchemyUnitOfWork, clock: FixedClock, transfers: int, units: int
) -> list[float]:
    quantity = int(units * TRANSFER_BLOCKS_SPANNED)
    latencies = []
    for index in range(transfers):
        # Alternate directions so both accounts stay large and fragmented.
        source, target = ("CHE-A", "CHE-B") if index % 2 == 0 else ("CHE-B", "CHE-A")
        started = time.perf_counter()
        handlers.transfer_internally(
            uow, clock, TransferInternally(source, target, QuantitySelection(quantity))
        )
        latencies.append(time.perf_counter() - started)
    return latencies


def file_size(path: Path) -> int:
    return sum(
        candidate.stat().st_size
        for candidate in (path, path.with_name(path.name + "-wal"))
        if candidate.exists()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=BLOCKS_DEFAULT)
    parser.add_argument("--units-per-block", type=int, default=UNITS_PER_BLOCK_DEFAULT)
    parser.add_argument("--transfers", type=int, default=TRANSFERS_DEFAULT)
    parser.add_argument("--database", type=Path, default=None)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        path = arguments.database or Path(scratch) / "ledger-bench.db"
        url = f"sqlite:///{path}"
        upgrade_database(url)
        engine = make_engine(url)
        uow, clock = SqlAlchemyUnitOfWork(engine), FixedClock()
        set_up(uow, clock)
        issuance_s = issue(uow, clock, arguments.blocks, arguments.units_per_block)
        latencies = transfer(uow, clock, arguments.transfers, arguments.units_per_block)
        totals = handlers.ledger_totals(uow, clock)
        with engine.connect() as connection:
            block_rows = connection.exec_driver_sql("SELECT count(*) FROM serial_blocks").scalar()
        engine.dispose()
        size = file_size(path)
    print(
        json.dumps(
            {
                "database": "sqlite",
                "blocks_issued": arguments.blocks,
                "units_issued": totals.issued,
                "issuance_seconds": round(issuance_s, 3),
                "issuance_blocks_per_second": round(arguments.blocks / issuance_s),
                "internal_transfers": arguments.transfers,
                "units_per_transfer": int(arguments.units_per_block * TRANSFER_BLOCKS_SPANNED),
                "transfers_seconds": round(sum(latencies), 3),
                "transfer_ms_p50": round(statistics.median(latencies) * 1000, 2),
                "transfer_ms_p99": round(statistics.quantiles(latencies, n=100)[98] * 1000, 2),
                "block_rows_after": block_rows,
                "conserved": totals.conserved,
                "database_bytes": size,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
