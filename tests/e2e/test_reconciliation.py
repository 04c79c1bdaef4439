"""Automatic reconciliation across three node processes (issue 10, last slice).

Every node publishes a signed snapshot of its Party-level holdings every
reconciliation period (here a short one) and compares everyone's with its unit
index and its own transfer records.

1. An honest federation runs transfers, several at once, while the snapshots go
   round: no node ever records a finding (the table keeps closed ones too).
2. ``TAMPERED``'s SQLite file is then altered behind its node's back while it runs:
   a block it holds is deleted, a block it sent to ``WITNESS`` is duplicated back
   as held, and its record of another committed transfer with ``WITNESS`` is
   deleted. ``WITNESS`` and ``BYSTANDER`` (the other nodes) report it from the
   first snapshot ``TAMPERED`` takes after the tampering (one period, plus the
   bounded wait for their unit index to catch up): the totals,
   the deleted range, the double holding with the Parties and the transfer that
   explains it, and (at ``WITNESS``, the only other side) the one-sided transfer;
   in ``GET /v1/reconciliation``, ``/metrics``, the public page and
   ``registry-node reconcile``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from deploy.federation.launcher import Federation, FederationSpec, PartySpec, group_alive

from tests.e2e.helpers import (
    World,
    call,
    issue,
    open_account,
    record_loa,
    register_approach,
    start_transfer,
    transfer_body,
    wait_status,
    wait_until,
)

TAMPERED = "BEN"
WITNESS = "TGO"
BYSTANDER = "LKA"
PARTIES = (TAMPERED, WITNESS, BYSTANDER)
APPROACH = "CA2001"
LOA = "BEN-LOA-2001"
VINTAGE = 2025

# Short, so a test sees several rounds; the default is minutes.
RECONCILIATION_PERIOD_S = 1.5
# Snapshots of every Party taken after the transfers ended, compared at every node,
# before the honest federation is declared clean (and before the tampering: longer
# than the clock margin, so the tampered ranges are not among those a snapshot
# leaves out as changed just before it).
ROUNDS_AFTER_TRANSFERS = 3
# Generous: three node processes share two cores with other suites.
FINDINGS_TIMEOUT_S = 120.0
ROUNDS_TIMEOUT_S = 120.0
POLL_INTERVAL_S = 0.5
SQLITE_BUSY_TIMEOUT_S = 30.0
DATABASE_FILE = "registry.sqlite3"
CLI_TIMEOUT_S = 60.0


def account(party: str, name: str) -> str:
    return f"{party}-{name}"


def serial(identifier: str) -> int:
    return int(identifier.split("-")[3])


@contextlib.contextmanager
def federation_with_short_period(kafka_bootstrap: str, base_dir: Path) -> Iterator[World]:
    federation = Federation(
        FederationSpec(
            parties=[PartySpec(party) for party in PARTIES],
            base_dir=base_dir,
            kafka_bootstrap=kafka_bootstrap,
            api_port_base=None,
        )
    )
    federation.prepare()
    for node in federation.nodes.values():
        with node.env_file.open("a") as config:
            config.write(f"REGISTRY_RECONCILIATION_PERIOD_S={RECONCILIATION_PERIOD_S}\n")
    federation.start()
    try:
        yield World(federation, kafka_bootstrap)
    finally:
        pids = [pid for party in PARTIES if (pid := federation.pid(party)) is not None]
        federation.stop()
        left = [pid for pid in pids if group_alive(pid)]
        assert not left, f"node process groups left behind after stop(): {left}"


def report(world: World, party: str) -> dict[str, Any]:
    found: dict[str, Any] = call(world.node(party), "GET", "/v1/reconciliation", token=None)
    return found


def wait_rounds_after(world: World, moment: float) -> None:
    """Until every node compared a snapshot of every Party taken well after ``moment``."""
    after = moment + ROUNDS_AFTER_TRANSFERS * RECONCILIATION_PERIOD_S

    def probe() -> bool | None:
        for party in PARTIES:
            compared = {c["party"]: c for c in report(world, party)["parties"]}
            for other in PARTIES:
                seen = compared.get(other)
                if seen is None or _epoch(seen["taken_at"]) < after:
                    return None
        return True

    wait_until(
        probe,
        timeout_s=ROUNDS_TIMEOUT_S,
        what="every node to compare every Party's later snapshots",
        interval_s=POLL_INTERVAL_S,
    )


def _epoch(moment: str) -> float:
    return datetime.fromisoformat(moment).timestamp()


def transfer(world: World, to_party: str, quantity: int) -> str:
    body = transfer_body(
        account(TAMPERED, "MAIN"), to_party, account(to_party, "MAIN"), quantity, LOA
    )
    start_transfer(world, TAMPERED, body)
    return str(body["transfer_id"])


def database(world: World, party: str) -> sqlite3.Connection:
    path = world.node(party).data_dir / DATABASE_FILE
    return sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S, isolation_level=None)


def log_events(world: World, party: str, event: str) -> list[dict[str, Any]]:
    lines = (world.node(party).data_dir / "node.log").read_text().splitlines()
    found: list[dict[str, Any]] = []
    for line in lines:
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict) and entry.get("event") == event:
                found.append(entry)
    return found


def findings_of(world: World, party: str, kind: str) -> list[dict[str, Any]]:
    return [f for f in report(world, party)["findings"] if f["kind"] == kind]


@pytest.fixture(scope="module")
def world(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with federation_with_short_period(
        kafka_bootstrap, tmp_path_factory.mktemp("reconciliation")
    ) as world:
        register_approach(world, APPROACH, PARTIES)
        record_loa(world, TAMPERED, LOA, APPROACH, (WITNESS, BYSTANDER))
        for party in PARTIES:
            open_account(world, party, account(party, "MAIN"))
        open_account(world, TAMPERED, account(TAMPERED, "KEEP"))
        issue(
            world,
            TAMPERED,
            account(TAMPERED, "MAIN"),
            APPROACH,
            2_000,
            vintage=VINTAGE,
            authorisation_id=LOA,
        )
        yield world


@pytest.mark.e2e
def test_an_honest_busy_federation_has_no_findings(world: World) -> None:
    # Transfers in flight while snapshots are taken and compared: several at once,
    # to both other Parties, over several reconciliation periods.
    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = list(
            pool.map(
                lambda args: transfer(world, *args),
                [(WITNESS, 40), (BYSTANDER, 30), (WITNESS, 20), (BYSTANDER, 10)] * 3,
            )
        )
    for transfer_id in ids:
        assert wait_status(world, TAMPERED, transfer_id)["status"] == "COMMITTED"
    done = time.time()
    wait_rounds_after(world, done)
    for party in PARTIES:
        found = report(world, party)
        assert found["findings"] == [], (party, found["findings"])
        assert {c["party"] for c in found["parties"]} == set(PARTIES)


@pytest.mark.e2e
def test_a_ledger_altered_behind_its_node_s_back_is_found_by_the_others(world: World) -> None:
    (kept,) = issue(
        world,
        TAMPERED,
        account(TAMPERED, "KEEP"),
        APPROACH,
        100,
        vintage=VINTAGE,
        authorisation_id=LOA,
    )
    duplicated_id = transfer(world, WITNESS, 70)
    deleted_id = transfer(world, WITNESS, 25)
    for transfer_id in (duplicated_id, deleted_id):
        assert wait_status(world, TAMPERED, transfer_id)["status"] == "COMMITTED"
        assert wait_status(world, WITNESS, transfer_id)["status"] == "COMMITTED"
    # Let every node see the honest state first: what follows is the tampering alone.
    wait_rounds_after(world, time.time())
    assert all(report(world, party)["findings"] == [] for party in PARTIES)

    tampering_began = time.time()
    with contextlib.closing(database(world, TAMPERED)) as db:
        db.execute("BEGIN IMMEDIATE")
        # 1. A block it holds disappears.
        (deleted_block,) = db.execute(
            "SELECT block_id, first_serial, last_serial FROM serial_blocks "
            "WHERE account_id = ? AND status = 'HELD'",
            (account(TAMPERED, "KEEP"),),
        ).fetchall()
        db.execute("DELETE FROM serial_blocks WHERE block_id = ?", (deleted_block[0],))
        # 2. A block it sent to WITNESS is held again: the same units in two registries.
        columns = [row[1] for row in db.execute("PRAGMA table_info(serial_blocks)")]
        sent = db.execute(
            "SELECT * FROM serial_blocks WHERE transfer_id = ? AND status = 'TRANSFERRED_OUT'",
            (duplicated_id,),
        ).fetchall()
        assert sent, "the transferred block is not in the sender's ledger"
        copy = dict(zip(columns, sent[0], strict=True))
        copy.update(block_id=None, status="HELD", account_id=account(TAMPERED, "MAIN"))
        db.execute(
            f"INSERT INTO serial_blocks ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)})",
            [copy[c] for c in columns],
        )
        duplicated = (int(copy["first_serial"]), int(copy["last_serial"]))
        # 3. Its record of another committed transfer with WITNESS is gone.
        removed = db.execute(
            "DELETE FROM protocol_transfers WHERE transfer_id = ?", (deleted_id,)
        ).rowcount
        assert removed == 1
        db.execute("COMMIT")
    tampered = time.time()
    deleted = (int(deleted_block[1]), int(deleted_block[2]))
    assert deleted == (int(kept["first_serial"]), int(kept["last_serial"]))

    def reported(party: str) -> dict[str, list[dict[str, Any]]] | None:
        found = report(world, party)["findings"]
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for finding in found:
            by_kind.setdefault(finding["kind"], []).append(finding)
        wanted = {"TOTALS_MISMATCH", "RANGE_MISMATCH", "DOUBLE_HOLDING"}
        if party == WITNESS:
            wanted.add("TRANSFER_ONE_SIDED")
        return by_kind if wanted <= set(by_kind) else None

    for party in (WITNESS, BYSTANDER):
        by_kind = wait_until(
            lambda party=party: reported(party),  # type: ignore[misc]
            timeout_s=FINDINGS_TIMEOUT_S,
            what=f"{party} to report the tampering at {TAMPERED}",
            interval_s=POLL_INTERVAL_S,
        )
        every = [f for kind in by_kind.values() for f in kind]
        assert {f["snapshot_party"] for f in every} == {TAMPERED}, every
        assert all(f["open"] for f in every), every
        (totals,) = by_kind["TOTALS_MISMATCH"]
        assert totals["stated"] - totals["expected"] == (duplicated[1] - duplicated[0] + 1) - (
            deleted[1] - deleted[0] + 1
        ), totals
        assert [(f["first_serial"], f["last_serial"]) for f in by_kind["RANGE_MISMATCH"]] == [
            deleted
        ], by_kind["RANGE_MISMATCH"]
        (double,) = by_kind["DOUBLE_HOLDING"]
        assert double["parties"] == [TAMPERED, WITNESS], double
        assert (double["first_serial"], double["last_serial"]) == duplicated, double
        if party == WITNESS:
            # Its own record of the transfer explains the double holding...
            assert double["transfer_ids"] == [duplicated_id], double
            # ...and the transfer TAMPERED no longer knows is one-sided.
            (one_sided,) = by_kind["TRANSFER_ONE_SIDED"]
            assert one_sided["transfer_ids"] == [deleted_id], one_sided
            assert one_sided["parties"] == [TAMPERED, WITNESS], one_sided
        else:
            assert "TRANSFER_ONE_SIDED" not in by_kind, by_kind

    # Found from ONE snapshot: every finding's log line names the snapshot that
    # showed it first, the first TAMPERED took after the tampering (or one it took
    # while the tampering was being written, which may have seen it).
    published = [
        (datetime.fromisoformat(e["taken_at"]).timestamp(), e["snapshot_id"])
        for e in log_events(world, TAMPERED, "holdings snapshot queued")
    ]
    first_after = min(taken for taken, _ in published if taken > tampered)
    showing = {sid for taken, sid in published if tampering_began <= taken <= first_after}
    for party in (WITNESS, BYSTANDER):
        named = {e["snapshot_id"] for e in log_events(world, party, "reconciliation finding")}
        assert named, party
        assert named <= showing, (party, named, published, tampering_began, tampered)

    # Party level only: no account of any Party appears.
    public = json.dumps(report(world, WITNESS))
    assert "account" not in public
    assert all(account(party, "MAIN") not in public for party in PARTIES)
    # The same report on /metrics, the public page and the console.
    node = world.node(WITNESS)
    with node.client() as client:
        metrics = client.get("/metrics").text
        page = client.get("/public").text
    for kind in ("DOUBLE_HOLDING", "TRANSFER_ONE_SIDED"):
        (sample,) = [
            line
            for line in metrics.splitlines()
            if line.startswith(f'registry_reconciliation_findings_total{{kind="{kind}"}}')
        ]
        assert float(sample.split()[-1]) >= 1, sample
    assert "DOUBLE_HOLDING" in page
    assert deleted_id in page
    console = subprocess.run(
        [
            *world.federation.spec.command(),
            "--api-url",
            node.api_url,
            "reconcile",
        ],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")},
            "COLUMNS": "400",
        },
    )
    assert console.returncode == 0, console.stderr
    for kind in ("TOTALS_MISMATCH", "RANGE_MISMATCH", "DOUBLE_HOLDING", "TRANSFER_ONE_SIDED"):
        assert kind in console.stdout, console.stdout
    # One log line per new finding, for an operator's alert.
    log = (node.data_dir / "node.log").read_text()
    assert log.count('"event": "reconciliation finding"') == len(report(world, WITNESS)["findings"])
