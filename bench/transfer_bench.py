"""Cross-border transfer benchmark: three registry node processes over a real Kafka broker.

Closed loop: ``--clients`` concurrent operators, each starting one transfer and
waiting for its final status before the next, for ``--duration-s`` seconds or
``--transfers`` transfers in all, whichever comes first. Reports committed
transfers per second and the p50/p99 commit latency (request sent to COMMITTED
seen by the coordinator's API).

In the same run, against the same broker, it measures the floor the protocol
cannot beat: a bare aiokafka ping-pong between two separate processes,
A->B->A->B->A (four one-way hops: PREPARE, VOTE, DECISION read by the
participant, and the coordinator's read of the outcome), which is the message
path of one two-phase commit without any database, signature or validation.
The ratio of the two latencies says how much the node adds on top of Kafka.

    .venv/bin/python bench/transfer_bench.py [--kafka-bootstrap HOST:PORT]
        [--clients 4] [--duration-s 30] [--transfers N] [--floor-iterations 300]
        [--output bench-transfers.json]

Without ``--kafka-bootstrap`` a local broker is started with deploy/kafka/broker.py
on port 29092 (and stopped at the end if this run started it). Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

SCRIPT_PATH = Path(__file__).resolve()
REPO_ROOT = SCRIPT_PATH.parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from deploy.federation.launcher import (  # noqa: E402  (needs the repository on sys.path)
    Federation,
    FederationSpec,
    NodeClient,
    PartySpec,
)

# ------------------------------------------------------------------------ limits

BENCH_KAFKA_PORT = 29092
BROKER_ANSWER_TIMEOUT_S = 15.0
CLIENTS_DEFAULT = 4
DURATION_S_DEFAULT = 30.0
# Upper bound on transfers when --transfers is not given: the duration decides.
TRANSFERS_MAX_DEFAULT = 100_000
UNITS_PER_TRANSFER = 1
# One transfer longer than this is counted as failed and the client moves on.
TRANSFER_TIMEOUT_S = 60.0
# The server holds POST /v1/transfers open up to this long for the final status.
SERVER_WAIT_S = 30
STATUS_POLL_INTERVAL_S = 0.01
HTTP_TIMEOUT_S = SERVER_WAIT_S + 10.0
# Ping-pong floor.
FLOOR_ITERATIONS_DEFAULT = 300
FLOOR_WARMUP_ITERATIONS = 20
FLOOR_HOPS_PER_ITERATION = 4
FLOOR_HOP_TIMEOUT_S = 10.0
FLOOR_READY_TIMEOUT_S = 30.0
FLOOR_ECHO_EXIT_TIMEOUT_S = 15.0
KAFKA_REQUEST_TIMEOUT_MS = 30_000

SENDER = "SEN"
RECEIVERS = ("FIN", "MAR")
PARTIES = (SENDER, *RECEIVERS)
APPROACH = "CA0301"
LOA = "SEN-LOA-0301"
VINTAGE = 2025
FINAL = frozenset({"COMMITTED", "ABORTED"})


# ------------------------------------------------------------------ the broker


def _broker_script() -> ModuleType:
    path = REPO_ROOT / "deploy" / "kafka" / "broker.py"
    spec = importlib.util.spec_from_file_location("a6_bench_kafka_broker", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def kafka_broker(given: str | None) -> Iterator[str]:
    broker = _broker_script()
    if given:
        if not broker.wait_for_kafka(given, BROKER_ANSWER_TIMEOUT_S):
            raise SystemExit(f"no Kafka broker answers at {given}")
        yield given
        return
    started = not broker.broker_is_up(BENCH_KAFKA_PORT)
    bootstrap = str(broker.start_broker(port=BENCH_KAFKA_PORT))
    try:
        yield bootstrap
    finally:
        if started:
            broker.stop_broker(port=BENCH_KAFKA_PORT)


# ------------------------------------------------------------- the federation


def _post(node: NodeClient, path: str, body: dict[str, Any]) -> Any:
    with node.operator() as client:
        response = client.post(path, json=body)
    if not response.is_success:
        raise SystemExit(
            f"{node.party}: POST {path} answered {response.status_code}: {response.text}"
        )
    return response.json()


def seed(federation: Federation, clients: int, units_per_client: int) -> dict[str, int]:
    """One source account per client at the sender (no two clients contend for one
    account's blocks), one destination account at each receiver, one approach, one LoA."""
    for party in PARTIES:
        _post(
            federation.node(party),
            "/v1/accounts",
            {"account_id": f"{party}-GOV", "kind": "HOLDING", "name": f"{party} bench"},
        )
        _post(
            federation.node(party),
            "/v1/cooperative-approaches",
            {
                "cooperative_approach_id": APPROACH,
                "participating_parties": sorted(PARTIES),
                "vintage_from": 2021,
                "vintage_to": 2030,
                "in_force_from": "2021-01-01",
                "sectors": ["Energy"],
                "activity_types": ["Solar PV"],
                "metric": "tCO2e",
                "name": "bench approach",
            },
        )
    sender = federation.node(SENDER)
    _post(
        sender,
        "/v1/authorisations",
        {
            "authorisation_id": LOA,
            "authorised_on": "2024-01-15",
            "cooperative_approach_id": APPROACH,
            "authorised_parties": list(RECEIVERS),
            "purposes": ["NDC"],
        },
    )
    issued: dict[str, int] = {}
    for client in range(clients):
        account_id = f"{SENDER}-C{client:03d}"
        _post(sender, "/v1/accounts", {"account_id": account_id, "kind": "HOLDING"})
        result = _post(
            sender,
            "/v1/issuances",
            {
                "account_id": account_id,
                "lines": [
                    {
                        "quantity": units_per_client,
                        "cooperative_approach_id": APPROACH,
                        "vintage": VINTAGE,
                        "sector": "Energy",
                        "activity_type": "Solar PV",
                        "mitigation_type": "Emission reductions",
                        "gwp_values": "AR5 100-year",
                        "authorisation_id": LOA,
                    }
                ],
            },
        )
        issued[account_id] = int(result["quantity"])
    return issued


def conservation_holds(federation: Federation, issued_total: int) -> bool:
    found = 0
    for party in PARTIES:
        with federation.node(party).public() as client:
            rows = client.get("/v1/holdings/totals").raise_for_status().json()
        found += sum(int(r["held"]) + int(r["retired"]) + int(r["cancelled"]) for r in rows)
    return found == issued_total


# ------------------------------------------------------------- the closed loop


@dataclass
class LoadResult:
    committed: int = 0
    aborted: int = 0
    failed: int = 0
    latencies_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0


async def _one_transfer(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    """Start one transfer and return its final status at the coordinator (or raise)."""
    deadline = time.monotonic() + TRANSFER_TIMEOUT_S
    response = await client.post("/v1/transfers", params={"wait_s": SERVER_WAIT_S}, json=body)
    if response.status_code != httpx.codes.ACCEPTED:
        raise RuntimeError(f"POST answered {response.status_code}: {response.text[:200]}")
    status = str(response.json()["status"])
    while status not in FINAL:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{body['transfer_id']} not final after {TRANSFER_TIMEOUT_S} s")
        await asyncio.sleep(STATUS_POLL_INTERVAL_S)
        found = await client.get(f"/v1/transfers/{body['transfer_id']}")
        status = str(found.raise_for_status().json()["status"])
    return status


async def closed_loop(
    sender: NodeClient, clients: int, duration_s: float, transfers_max: int
) -> LoadResult:
    result = LoadResult()
    started = time.monotonic()
    stop_at = started + duration_s
    budget = [transfers_max]

    async def client_loop(index: int) -> None:
        receiver = RECEIVERS[index % len(RECEIVERS)]
        headers = {"Authorization": f"Bearer {sender.operator_token}"}
        async with httpx.AsyncClient(
            base_url=sender.api_url, headers=headers, timeout=HTTP_TIMEOUT_S
        ) as client:
            while time.monotonic() < stop_at and budget[0] > 0:
                budget[0] -= 1
                body = {
                    "transfer_id": str(uuid.uuid4()),
                    "from_account_id": f"{SENDER}-C{index:03d}",
                    "to_party": receiver,
                    "to_account_id": f"{receiver}-GOV",
                    "quantity": UNITS_PER_TRANSFER,
                    "authorisation_id": LOA,
                    "purpose": "NDC",
                }
                sent = time.monotonic()
                try:
                    status = await _one_transfer(client, body)
                except (httpx.HTTPError, RuntimeError, TimeoutError) as error:
                    result.failed += 1
                    if len(result.errors) < 10:
                        result.errors.append(str(error))
                    continue
                if status == "COMMITTED":
                    result.committed += 1
                    result.latencies_s.append(time.monotonic() - sent)
                else:
                    result.aborted += 1

    await asyncio.gather(*(client_loop(index) for index in range(clients)))
    result.elapsed_s = time.monotonic() - started
    return result


# ---------------------------------------------------------------- the floor


async def _assigned_consumer(bootstrap: str, topic: str) -> Any:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="latest",
        request_timeout_ms=KAFKA_REQUEST_TIMEOUT_MS,
    )
    await consumer.start()
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    await consumer.seek_to_end(partition)
    await consumer.position(partition)  # resolve the position now, before any send
    return consumer


async def _producer(bootstrap: str) -> Any:
    from aiokafka import AIOKafkaProducer

    # acks=all, as the nodes publish: the floor pays the same durability.
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", request_timeout_ms=KAFKA_REQUEST_TIMEOUT_MS
    )
    await producer.start()
    return producer


async def _next_message(consumer: Any) -> bytes:
    async with asyncio.timeout(FLOOR_HOP_TIMEOUT_S):
        record = await consumer.getone()
    value: bytes = record.value
    return value


async def create_floor_topics(bootstrap: str, names: Sequence[str]) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="transfer-bench")
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name=name, num_partitions=1, replication_factor=1) for name in names]
        )
    finally:
        await admin.close()


async def echo(bootstrap: str, in_topic: str, out_topic: str, messages: int) -> None:
    """Process B: answer every message on ``in_topic`` on ``out_topic``, ``messages`` times."""
    consumer = await _assigned_consumer(bootstrap, in_topic)
    producer = await _producer(bootstrap)
    try:
        print("ready", flush=True)
        for _ in range(messages):
            value = await _next_message(consumer)
            await producer.send_and_wait(out_topic, value)
    finally:
        await consumer.stop()
        await producer.stop()


@dataclass
class FloorResult:
    iterations: int
    hops_per_iteration: int
    latencies_s: list[float]


async def ping_pong(bootstrap: str, iterations: int) -> FloorResult:
    """Process A against a child process B: A->B->A->B->A per iteration."""
    run = uuid.uuid4().hex[:12]
    to_b, to_a = f"bench.floor.{run}.b", f"bench.floor.{run}.a"
    await create_floor_topics(bootstrap, [to_a, to_b])
    total = FLOOR_WARMUP_ITERATIONS + iterations
    consumer = await _assigned_consumer(bootstrap, to_a)
    producer = await _producer(bootstrap)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT_PATH),
        "_echo",
        "--kafka-bootstrap",
        bootstrap,
        "--in-topic",
        to_b,
        "--out-topic",
        to_a,
        "--messages",
        str(total * FLOOR_HOPS_PER_ITERATION // 2),
        stdout=asyncio.subprocess.PIPE,
    )
    latencies: list[float] = []
    try:
        if child.stdout is None:
            raise RuntimeError("the echo process has no stdout")
        ready = await asyncio.wait_for(child.stdout.readline(), FLOOR_READY_TIMEOUT_S)
        if ready.strip() != b"ready":
            raise RuntimeError(f"the echo process did not start: {ready!r}")
        for iteration in range(total):
            started = time.monotonic()
            for hop in range(FLOOR_HOPS_PER_ITERATION // 2):
                await producer.send_and_wait(to_b, f"{iteration}:{hop}".encode())
                await _next_message(consumer)
            if iteration >= FLOOR_WARMUP_ITERATIONS:
                latencies.append(time.monotonic() - started)
    finally:
        await consumer.stop()
        await producer.stop()
        try:
            await asyncio.wait_for(child.wait(), FLOOR_ECHO_EXIT_TIMEOUT_S)
        except TimeoutError:
            child.kill()
            await child.wait()
    return FloorResult(iterations, FLOOR_HOPS_PER_ITERATION, latencies)


# ------------------------------------------------------------------ reporting


def percentile(values: Sequence[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def latency_summary_ms(values: Sequence[float]) -> dict[str, float | None]:
    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 2)

    return {
        "p50": ms(percentile(values, 0.50)),
        "p99": ms(percentile(values, 0.99)),
        "mean": ms(statistics.fmean(values) if values else None),
        "max": ms(max(values) if values else None),
    }


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(a / b, 2)


def run(args: argparse.Namespace) -> dict[str, Any]:
    transfers_max = args.transfers or TRANSFERS_MAX_DEFAULT
    units_per_client = transfers_max * UNITS_PER_TRANSFER
    load = LoadResult()
    conserved: bool | None = None
    with kafka_broker(args.kafka_bootstrap) as bootstrap:
        if not args.floor_only:
            load, conserved = run_load(args, bootstrap, transfers_max, units_per_client)
        floor = asyncio.run(ping_pong(bootstrap, args.floor_iterations))
    return report(args, bootstrap, transfers_max, load, conserved, floor)


def run_load(
    args: argparse.Namespace, bootstrap: str, transfers_max: int, units_per_client: int
) -> tuple[LoadResult, bool]:
    """Three fresh nodes, seeded, under the closed loop; stopped before returning."""
    with tempfile.TemporaryDirectory(prefix="transfer-bench-") as scratch:
        federation = Federation(
            FederationSpec(
                parties=[PartySpec(party) for party in PARTIES],
                base_dir=Path(args.base_dir or scratch) / "federation",
                kafka_bootstrap=bootstrap,
                api_port_base=None,
            )
        )
        with federation:
            issued = seed(federation, args.clients, units_per_client)
            load = asyncio.run(
                closed_loop(federation.node(SENDER), args.clients, args.duration_s, transfers_max)
            )
            conserved = conservation_holds(federation, sum(issued.values()))
    return load, conserved


def report(
    args: argparse.Namespace,
    bootstrap: str,
    transfers_max: int,
    load: LoadResult,
    conserved: bool | None,
    floor: FloorResult,
) -> dict[str, Any]:
    commit = latency_summary_ms(load.latencies_s)
    bare = latency_summary_ms(floor.latencies_s)
    return {
        "config": {
            "kafka_bootstrap": bootstrap,
            "parties": list(PARTIES),
            "clients": args.clients,
            "duration_s": args.duration_s,
            "transfers_max": transfers_max,
            "units_per_transfer": UNITS_PER_TRANSFER,
            "database": "sqlite (one file per node)",
        },
        "transfers": {
            "committed": load.committed,
            "aborted": load.aborted,
            "failed": load.failed,
            "elapsed_s": round(load.elapsed_s, 2),
            "committed_per_s": round(load.committed / load.elapsed_s, 2) if load.elapsed_s else 0.0,
            "commit_latency_ms": commit,
            "errors": load.errors,
            "conservation_holds": conserved,
        },
        "floor": {
            "iterations": floor.iterations,
            "hops_per_iteration": floor.hops_per_iteration,
            "path": "A->B->A->B->A, two processes, acks=all, one partition per direction",
            "round_trip_latency_ms": bare,
            "sequential_per_s": round(len(floor.latencies_s) / sum(floor.latencies_s), 2)
            if floor.latencies_s
            else 0.0,
        },
        "ratio_commit_to_floor": {
            "p50": ratio(commit["p50"], bare["p50"]),
            "p99": ratio(commit["p99"], bare["p99"]),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command")
    parser.add_argument("--kafka-bootstrap", default=None)
    parser.add_argument("--clients", type=int, default=CLIENTS_DEFAULT)
    parser.add_argument("--duration-s", type=float, default=DURATION_S_DEFAULT)
    parser.add_argument("--transfers", type=int, default=None, help="stop after N in all")
    parser.add_argument("--floor-iterations", type=int, default=FLOOR_ITERATIONS_DEFAULT)
    parser.add_argument("--base-dir", type=Path, default=None, help="keep node data here")
    parser.add_argument(
        "--floor-only", action="store_true", help="only the bare Kafka ping-pong floor"
    )
    parser.add_argument("--output", type=Path, default=None, help="also write the JSON here")
    echo_parser = commands.add_parser("_echo", help="internal: process B of the floor")
    echo_parser.add_argument("--kafka-bootstrap", required=True)
    echo_parser.add_argument("--in-topic", required=True)
    echo_parser.add_argument("--out-topic", required=True)
    echo_parser.add_argument("--messages", type=int, required=True)
    args = parser.parse_args(argv)
    if args.command == "_echo":
        asyncio.run(echo(args.kafka_bootstrap, args.in_topic, args.out_topic, args.messages))
        return 0
    if args.clients < 1 or args.duration_s <= 0 or args.floor_iterations < 1:
        parser.error("--clients, --duration-s and --floor-iterations must be positive")
    text = json.dumps(run(args), indent=2)
    print(text)
    if args.output is not None:
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
