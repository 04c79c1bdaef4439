"""Helpers for the cross-border transfer scenarios: a module-scoped federation of
Parties no other suite uses, operator calls, the federation-wide invariant checks,
and raw access to the Kafka topics (read, replay, forge, wait until consumed).

Every wait here is bounded by a named timeout and polls at a named interval; a
wait that runs out fails with what it was waiting for and the last value seen.

Why our own Party codes: a node's consumer groups are named after its Party
(``a6-node-<PARTY>``), so two federations with the same Parties on one broker
would split each other's inbox partitions between them. The shared fixtures use
CHE, GHA and THA; each transfer module here picks three Parties of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from deploy.federation.launcher import (
    Federation,
    FederationSpec,
    NodeClient,
    PartySpec,
    group_alive,
    log_tail,
)

from a6wire.directory import FederationDirectory, FederationMember
from a6wire.keys import public_key_base64
from a6wire.messages import Envelope
from a6wire.signing import seal
from a6wire.topics import DECISION_TOPIC, inbox_topic

# ----------------------------------------------------------------------- limits

# A transfer between two healthy local nodes commits in well under a second; a
# 2-core CI runner with three nodes and a JVM broker can take a few seconds.
TRANSFER_FINAL_TIMEOUT_S = 60.0
# The server-side long poll on POST /v1/transfers; the client polls after it.
TRANSFER_WAIT_S = 10
POLL_INTERVAL_S = 0.1
# Reading a topic to its end offsets, and waiting for one record to appear.
TOPIC_READ_TIMEOUT_S = 30.0
RECORD_APPEAR_TIMEOUT_S = 30.0
KAFKA_POLL_TIMEOUT_MS = 200
# Until a node's consumer group has committed past the records we produced.
CONSUMED_TIMEOUT_S = 60.0
KAFKA_REQUEST_TIMEOUT_MS = 30_000
KAFKA_NO_ERROR = 0
# Until every node's unit index has read the unit log and the decision topic to the
# point the ledgers are at (a quiescent federation: nothing more is coming).
UNIT_INDEX_CATCH_UP_TIMEOUT_S = 30.0
# The inbox a member that runs no node gets from the tests: what a local node makes its own
# (registry.adapters.messaging.config: INBOX_TOPIC_PARTITIONS_DEFAULT, local replication).
INBOX_TOPIC_PARTITIONS = 3
INBOX_TOPIC_REPLICATION_FACTOR = 1
# Enough for every transfer record one test module makes on one node.
TRANSFER_LIST_LIMIT = 1_000
# How much of a node's log a failure quotes: protocol lines, not the access log of polls.
LOG_LINES_SCANNED = 2_000
LOG_LINES_SHOWN = 40

FINAL_STATUSES = frozenset({"COMMITTED", "ABORTED"})
HTTP_CONFLICT_OR_UNPROCESSABLE = frozenset({409, 422})

# The consumer group names a node uses (registry.adapters.messaging.config).
INBOX_GROUP_TEMPLATE = "a6-node-{party}"
DECISION_GROUP_TEMPLATE = "a6-node-{party}-decisions"

# Block attributes the scenarios issue under; approaches cover exactly these.
SECTOR = "Energy"
ACTIVITY_TYPE = "Clean cookstoves"
MITIGATION_TYPE = "Emission reductions"
GWP_VALUES = "AR5 100-year"
METRIC = "tCO2e"
APPROACH_VINTAGE_FROM = 2021
APPROACH_VINTAGE_TO = 2030
APPROACH_IN_FORCE_FROM = "2021-01-01"
LOA_AUTHORISED_ON = "2024-01-15"

T = TypeVar("T")


# --------------------------------------------------------------------- waiting


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout_s: float,
    what: str,
    interval_s: float = POLL_INTERVAL_S,
) -> T:
    """Call ``probe`` until it returns something other than None; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


# ------------------------------------------------------------------ federation


@dataclass
class World:
    """One running federation and what the tests issued into it (for conservation)."""

    federation: Federation
    kafka_bootstrap: str
    # (cooperative approach, vintage) -> units issued anywhere in the federation.
    issued: Counter[tuple[str, int]] = field(default_factory=Counter)

    @property
    def parties(self) -> list[str]:
        return list(self.federation.nodes)

    def node(self, party: str) -> NodeClient:
        return self.federation.node(party)

    def pid(self, party: str) -> int:
        pid = self.federation.pid(party)
        if pid is None:
            raise AssertionError(f"the node of {party} is not running")
        return pid

    def log(self, party: str) -> str:
        """The node's last log lines that are not HTTP access lines (the polls)."""
        lines = log_tail(self.node(party).log_path, LOG_LINES_SCANNED).splitlines()
        kept = [line for line in lines if '"request"' not in line and "access" not in line]
        return "\n".join(kept[-LOG_LINES_SHOWN:])


@contextlib.contextmanager
def running_federation(
    kafka_bootstrap: str,
    base_dir: Path,
    parties: Sequence[str],
    *,
    members_without_node: Mapping[str, Ed25519PrivateKey] | None = None,
    started_later: Collection[str] = (),
    authority_keys: Sequence[str] = (),
) -> Iterator[World]:
    """Three (or more) node processes of our own Parties; stopped, and checked gone, on exit.

    ``members_without_node``: Parties listed in the federation directory with the
    public half of the given key (registry ``<PARTY>01``) but running no node; a
    test plays them on the bus with that key (a hostile member, say).

    ``started_later``: Parties initialised and in the directory, whose nodes the
    test starts itself (``world.federation.restart(party)``) on an empty database.
    ``authority_keys``: the nodes follow the directory versions these keys sign."""
    federation = Federation(
        FederationSpec(
            parties=[PartySpec(party) for party in parties],
            base_dir=base_dir,
            kafka_bootstrap=kafka_bootstrap,
            api_port_base=None,
            authority_keys=tuple(authority_keys),
        )
    )
    federation.prepare()
    if members_without_node:
        add_directory_members(federation.directory_path, members_without_node)
    federation.start([party for party in parties if party not in started_later])
    try:
        yield World(federation, kafka_bootstrap)
    finally:
        # Every node, including a Party that joined while the federation ran.
        pids = [pid for party in federation.nodes if (pid := federation.pid(party)) is not None]
        for pid in pids:  # a node left paused by a failed test would not stop on SIGTERM
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGCONT)
        federation.stop()
        left = [pid for pid in pids if group_alive(pid)]
        assert not left, f"node process groups left behind after stop(): {left}"


def add_directory_members(directory_path: Path, keys: Mapping[str, Ed25519PrivateKey]) -> None:
    """Append members to a federation directory before the nodes start (they read it once)."""
    directory = FederationDirectory.from_json(directory_path.read_bytes())
    added = tuple(
        FederationMember(
            party=party,
            registry_id=f"{party}01",
            public_key_base64=public_key_base64(key),
            inbox_topic=inbox_topic(party),
        )
        for party, key in keys.items()
    )
    extended = FederationDirectory(members=(*directory.members, *added))
    directory_path.write_text(extended.model_dump_json(indent=2) + "\n")


def pause(world: World, party: str) -> None:
    """SIGSTOP the node's process group: it neither consumes nor answers until resumed."""
    os.killpg(world.pid(party), signal.SIGSTOP)


def resume(world: World, party: str) -> None:
    os.killpg(world.pid(party), signal.SIGCONT)


@contextlib.contextmanager
def paused(world: World, party: str) -> Iterator[None]:
    """Paused for the block; resumed on the way out even when the block fails."""
    pause(world, party)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError, AssertionError):
            resume(world, party)


# --------------------------------------------------------------- operator calls


def call(
    node: NodeClient,
    method: str,
    path: str,
    *,
    expect: Iterable[int] = (200, 201),
    token: str | None = "operator",
    **kwargs: Any,
) -> Any:
    """One API call; fail with the node's answer unless the status is one of ``expect``."""
    bearer = {"operator": node.operator_token, "auditor": node.auditor_token}.get(token or "")
    with node.client(bearer) as client:
        response = client.request(method, path, **kwargs)
    if response.status_code not in set(expect):
        raise AssertionError(
            f"{node.party}: {method} {path} answered {response.status_code}: {response.text}"
        )
    return response.json() if response.content else None


def open_account(world: World, party: str, account_id: str) -> None:
    call(
        world.node(party),
        "POST",
        "/v1/accounts",
        json={"account_id": account_id, "kind": "HOLDING", "name": f"{account_id} holding"},
    )


def register_approach(
    world: World,
    approach_id: str,
    participating: Sequence[str],
    *,
    register_at: Sequence[str] | None = None,
) -> None:
    """Record the approach in the registry of every Party in ``register_at``
    (default: every participating Party, as each records the approaches it is in)."""
    body = {
        "cooperative_approach_id": approach_id,
        "participating_parties": sorted(participating),
        "vintage_from": APPROACH_VINTAGE_FROM,
        "vintage_to": APPROACH_VINTAGE_TO,
        "in_force_from": APPROACH_IN_FORCE_FROM,
        "sectors": [SECTOR],
        "activity_types": [ACTIVITY_TYPE],
        "metric": METRIC,
        "name": f"e2e approach {approach_id}",
    }
    for party in register_at if register_at is not None else participating:
        call(world.node(party), "POST", "/v1/cooperative-approaches", json=body)


def record_loa(
    world: World,
    party: str,
    authorisation_id: str,
    approach_id: str,
    authorised_parties: Sequence[str],
    *,
    purposes: Sequence[str] = ("NDC",),
) -> None:
    body = {
        "authorisation_id": authorisation_id,
        "authorised_on": LOA_AUTHORISED_ON,
        "cooperative_approach_id": approach_id,
        "authorised_parties": list(authorised_parties),
        "purposes": list(purposes),
        "mitigation_from": "2021-01-01",
        "mitigation_to": "2030-12-31",
        "use_from": "2021-01-01",
        "use_to": "2035-12-31",
        "terms": "e2e transfer scenarios",
    }
    call(world.node(party), "POST", "/v1/authorisations", json=body)


def issue(
    world: World,
    party: str,
    account_id: str,
    approach_id: str,
    quantity: int,
    *,
    vintage: int,
    authorisation_id: str | None,
) -> list[dict[str, Any]]:
    """Issue units and count them as issued; returns the issued blocks."""
    line: dict[str, Any] = {
        "quantity": quantity,
        "cooperative_approach_id": approach_id,
        "vintage": vintage,
        "sector": SECTOR,
        "activity_type": ACTIVITY_TYPE,
        "mitigation_type": MITIGATION_TYPE,
        "gwp_values": GWP_VALUES,
    }
    if authorisation_id is not None:
        line["authorisation_id"] = authorisation_id
    result = call(
        world.node(party),
        "POST",
        "/v1/issuances",
        json={"account_id": account_id, "lines": [line]},
    )
    world.issued[(approach_id, vintage)] += int(result["quantity"])
    blocks: list[dict[str, Any]] = result["blocks"]
    return blocks


def holdings(world: World, party: str, account_id: str) -> int:
    found = call(world.node(party), "GET", f"/v1/accounts/{account_id}/holdings")
    return int(found["total_quantity"])


def held_blocks(world: World, party: str, account_id: str) -> list[dict[str, Any]]:
    found = call(world.node(party), "GET", f"/v1/accounts/{account_id}/holdings")
    blocks: list[dict[str, Any]] = found["blocks"]
    return blocks


def ca_entries(world: World, party: str) -> list[dict[str, Any]]:
    """Every corresponding-adjustment entry of the Party's public CA ledger."""
    found = call(world.node(party), "GET", "/v1/ca-ledger", token=None)
    entries: list[dict[str, Any]] = found["entries"]
    return entries


def audit(world: World, party: str, first: str, last: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = call(
        world.node(party),
        "GET",
        "/v1/audit",
        token="auditor",
        params={"first_identifier": first, "last_identifier": last},
    )
    return found


def audit_of_transfer(
    world: World, party: str, blocks: Sequence[Mapping[str, Any]], transfer_id: str
) -> list[dict[str, Any]]:
    """The Party's audit entries for ``blocks`` that name ``transfer_id``."""
    return [
        entry
        for block in blocks
        for entry in audit(world, party, block["first_identifier"], block["last_identifier"])
        if entry["transfer_id"] == transfer_id
    ]


def freeze(world: World, party: str, reason: str) -> None:
    call(world.node(party), "POST", "/v1/registry/freeze", json={"reason": reason})


def unfreeze(world: World, party: str) -> None:
    call(world.node(party), "POST", "/v1/registry/unfreeze")


def revoke_loa(world: World, party: str, authorisation_id: str) -> None:
    call(world.node(party), "POST", f"/v1/authorisations/{authorisation_id}/revoke")


# ------------------------------------------------------------------- transfers


def transfer_body(
    from_account_id: str,
    to_party: str,
    to_account_id: str,
    quantity: int,
    authorisation_id: str,
    *,
    approach_id: str | None = None,
    vintage: int | None = None,
    deadline_s: int | None = None,
    transfer_id: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "transfer_id": transfer_id or str(uuid.uuid4()),
        "from_account_id": from_account_id,
        "to_party": to_party,
        "to_account_id": to_account_id,
        "quantity": quantity,
        "authorisation_id": authorisation_id,
        "purpose": "NDC",
    }
    if approach_id is not None:
        body["cooperative_approach_id"] = approach_id
    if vintage is not None:
        body["vintage"] = vintage
    if deadline_s is not None:
        body["deadline_s"] = deadline_s
    return body


def post_transfer(
    world: World, party: str, body: Mapping[str, Any], *, wait_s: int = 0
) -> httpx.Response:
    node = world.node(party)
    with node.operator() as client:
        return client.post("/v1/transfers", params={"wait_s": wait_s}, json=dict(body))


def start_transfer(
    world: World, party: str, body: Mapping[str, Any], *, wait_s: int = 0
) -> dict[str, Any]:
    """POST the transfer and require the 202 of an accepted request; returns the view."""
    response = post_transfer(world, party, body, wait_s=wait_s)
    if response.status_code != httpx.codes.ACCEPTED:
        raise AssertionError(
            f"{party}: POST /v1/transfers answered {response.status_code}: {response.text}"
        )
    view: dict[str, Any] = response.json()
    assert view["transfer_id"] == body["transfer_id"], view
    return view


def transfer_view(world: World, party: str, transfer_id: str) -> dict[str, Any] | None:
    """The Party's view of the transfer, or None while it has no record of it (404)."""
    node = world.node(party)
    with node.operator() as client:
        response = client.get(f"/v1/transfers/{transfer_id}")
    if response.status_code == httpx.codes.NOT_FOUND:
        return None
    if response.status_code != httpx.codes.OK:
        raise AssertionError(
            f"{party}: GET /v1/transfers/{transfer_id} answered "
            f"{response.status_code}: {response.text}"
        )
    view: dict[str, Any] = response.json()
    return view


def wait_status(
    world: World,
    party: str,
    transfer_id: str,
    statuses: Iterable[str] = FINAL_STATUSES,
    *,
    timeout_s: float = TRANSFER_FINAL_TIMEOUT_S,
    completed: bool = False,
) -> dict[str, Any]:
    """Poll the Party's view until its status is one of ``statuses`` (and, with
    ``completed``, the coordinator has heard DONE from every participant)."""
    wanted = frozenset(statuses)
    last: list[dict[str, Any] | None] = [None]

    def probe() -> dict[str, Any] | None:
        view = transfer_view(world, party, transfer_id)
        last[0] = view
        if view is None or view["status"] not in wanted:
            return None
        if completed and not view["completed"]:
            return None
        return view

    try:
        return wait_until(
            probe, timeout_s=timeout_s, what=f"{party} to see {transfer_id} in {sorted(wanted)}"
        )
    except AssertionError as error:
        raise AssertionError(
            f"{error}; last view: {last[0]}\n--- {party} log tail ---\n{world.log(party)}"
        ) from None


def run_transfer(
    world: World,
    sender: str,
    body: Mapping[str, Any],
    *,
    timeout_s: float = TRANSFER_FINAL_TIMEOUT_S,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Start a transfer and wait until both sides are final; returns (sender, receiver) views."""
    start_transfer(world, sender, body, wait_s=TRANSFER_WAIT_S)
    transfer_id = str(body["transfer_id"])
    receiver = str(body["to_party"])
    sender_view = wait_status(world, sender, transfer_id, timeout_s=timeout_s)
    receiver_view = wait_status(world, receiver, transfer_id, timeout_s=timeout_s)
    return sender_view, receiver_view


def blocks_quantity(blocks: Iterable[Mapping[str, Any]]) -> int:
    return sum(int(block["quantity"]) for block in blocks)


# ------------------------------------------------------------------ invariants


def assert_conservation(world: World) -> None:
    """Invariant 1: summed over every node, held + retired + cancelled = issued,
    per cooperative approach and vintage (units pending credit are not holdings)."""
    found: Counter[tuple[str, int]] = Counter()
    per_node: dict[str, list[Any]] = {}
    for party in world.parties:
        totals = call(world.node(party), "GET", "/v1/holdings/totals", token=None)
        per_node[party] = totals
        for row in totals:
            found[(row["cooperative_approach_id"], int(row["vintage"]))] += (
                int(row["held"]) + int(row["retired"]) + int(row["cancelled"])
            )
    expected = {key: quantity for key, quantity in world.issued.items() if quantity}
    actual = {key: quantity for key, quantity in found.items() if quantity}
    assert actual == expected, f"conservation broken: issued {expected}, found {per_node}"


def _present_ranges(world: World, party: str) -> list[tuple[str, str, int, int, str]]:
    ranges: list[tuple[str, str, int, int, str]] = []
    for account in call(world.node(party), "GET", "/v1/accounts"):
        for block in held_blocks(world, party, account["account_id"]):
            ranges.append(
                (
                    block["originating_registry_id"],
                    block["cooperative_approach_id"],
                    int(block["first_serial"]),
                    int(block["last_serial"]),
                    f"{party}/{account['account_id']}",
                )
            )
    return ranges


def assert_no_double_holding(world: World) -> None:
    """Invariant 4: no serial is held twice, in one registry or across registries."""
    ranges = sorted(
        (r for party in world.parties for r in _present_ranges(world, party)),
        key=lambda r: (r[0], r[1], r[2]),
    )
    # A sweep keeping the range that reaches furthest so far, per registry and approach.
    furthest: dict[tuple[str, str], tuple[str, str, int, int, str]] = {}
    for current in ranges:
        key = (current[0], current[1])
        earlier = furthest.get(key)
        if earlier is not None and current[2] <= earlier[3]:
            raise AssertionError(f"serials held twice: {earlier} and {current}")
        if earlier is None or current[3] > earlier[3]:
            furthest[key] = current


# (originating registry, approach, Party, first serial, last serial)
PartyRange = tuple[str, str, str, int, int]


def _joined(ranges: Iterable[PartyRange]) -> list[PartyRange]:
    """(registry, approach, Party, first, last), sorted, adjacent ranges of one Party joined."""
    out: list[PartyRange] = []
    for current in sorted(ranges, key=lambda r: (r[0], r[1], r[3])):
        if out and out[-1][:3] == current[:3] and out[-1][4] + 1 == current[3]:
            out[-1] = (*out[-1][:4], current[4])
        else:
            out.append(current)
    return out


def ledger_holdings(world: World) -> list[PartyRange]:
    """Every serial range held (HELD) in any account of any node, by Party."""
    return _joined(
        (registry, approach, where.split("/", 1)[0], first, last)
        for party in world.parties
        for registry, approach, first, last, where in _present_ranges(world, party)
    )


def index_holdings(world: World, party: str) -> tuple[list[PartyRange], list[dict[str, Any]]]:
    """What ``party``'s unit index says every Party holds, and its segments in no clear state.

    A segment is clear when exactly one Party holds it (issued once, in circulation),
    or when it was issued once and left circulation once with no Party holding it.
    """
    segments = call(world.node(party), "GET", "/v1/unit-index", token=None)
    held: list[PartyRange] = []
    unclear: list[dict[str, Any]] = []
    for segment in segments:
        if segment["holder"] is not None:
            held.append(
                (
                    segment["originating_registry_id"],
                    segment["cooperative_approach_id"],
                    segment["holder"],
                    int(segment["first_serial"]),
                    int(segment["last_serial"]),
                )
            )
        elif not (
            segment["issued"] == 1 and segment["left_circulation"] == 1 and not segment["holdings"]
        ):
            unclear.append(segment)
    return _joined(held), unclear


def assert_unit_index_matches_ledgers(world: World) -> None:
    """Invariant 8: at a quiescent point, every node's unit index (built from the unit
    log and the decision topic only) says exactly what the nodes' own ledgers hold,
    Party by Party, range by range. Waits (bounded) for the indexes to catch up."""
    expected = ledger_holdings(world)
    last: dict[str, Any] = {}

    def probe() -> bool | None:
        for party in world.parties:
            held, unclear = index_holdings(world, party)
            last[party] = (held, unclear)
            if held != expected or unclear:
                return None
        return True

    try:
        wait_until(probe, timeout_s=UNIT_INDEX_CATCH_UP_TIMEOUT_S, what="the unit indexes")
    except AssertionError:
        problems = []
        for party, (held, unclear) in last.items():
            missing = sorted(set(expected) - set(held))
            extra = sorted(set(held) - set(expected))
            if missing or extra or unclear:
                problems.append(
                    f"{party}'s unit index: missing {missing[:10]}, not in any ledger "
                    f"{extra[:10]}, unclear segments {unclear[:10]}"
                )
        raise AssertionError(
            "the unit index is not the union of the ledgers:\n" + "\n".join(problems)
        ) from None


def assert_federation_invariants(world: World) -> None:
    assert_conservation(world)
    assert_no_double_holding(world)
    assert_unit_index_matches_ledgers(world)


def transfer_records(world: World, party: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Every transfer record of the Party's node by its full key (transfer id, coordinator).

    ``GET /v1/transfers/{id}`` shows one record per id; the list shows every record, so
    an id that another coordinator reused shows once per coordinator."""
    listed = call(world.node(party), "GET", "/v1/transfers", params={"limit": TRANSFER_LIST_LIMIT})
    items: list[dict[str, Any]] = listed["items"]
    assert len(items) < TRANSFER_LIST_LIMIT, f"{party} lists {len(items)} transfers: raise it"
    records: dict[tuple[str, str], dict[str, Any]] = {}
    for item in items:
        key = (item["transfer_id"], item["from_party"])
        assert key not in records, f"{party} keeps two records of the transfer {key}"
        records[key] = item
    return records


def assert_transfers_atomic(world: World) -> None:
    """Atomicity: every transfer between two nodes has one status at both ends (the
    coordinator's record and each receiver's record of the same full key). A transfer
    that ended ABORTED at its coordinator may be unknown to a receiver (refused before
    the PREPARE left, or the PREPARE never arrived); a COMMITTED one may not."""
    records = {party: transfer_records(world, party) for party in world.parties}
    broken: list[str] = []
    for coordinator, mine in records.items():
        for (transfer_id, from_party), view in mine.items():
            if from_party != coordinator:
                continue  # a receiver's record: checked from its coordinator's side
            for receiver in view["to_party"].split(","):
                if receiver not in records:
                    continue
                theirs = records[receiver].get((transfer_id, coordinator))
                status = view["status"]
                if theirs is None and status != "ABORTED":
                    broken.append(f"{transfer_id}: {status} at {coordinator}, none at {receiver}")
                elif theirs is not None and theirs["status"] != status:
                    broken.append(
                        f"{transfer_id} ({coordinator} -> {receiver}): {status} "
                        f"({view['phase']}) at {coordinator}, {theirs['status']} "
                        f"({theirs['phase']}) at {receiver}"
                    )
    for receiver, theirs_all in records.items():
        for (transfer_id, coordinator), view in theirs_all.items():
            known = coordinator not in records or (transfer_id, coordinator) in records[coordinator]
            if coordinator != receiver and not known:
                broken.append(
                    f"{transfer_id}: {view['status']} at {receiver}, "
                    f"none at its coordinator {coordinator}"
                )
    assert not broken, "transfers not atomic:\n" + "\n".join(broken)


def ledger_snapshot(world: World, accounts: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """What replayed or forged messages must not change: holdings of the given
    accounts, every CA entry and the holdings totals of every node."""
    return {
        party: {
            "holdings": {
                account: held_blocks(world, party, account) for account in accounts.get(party, ())
            },
            "ca": ca_entries(world, party),
            "totals": call(world.node(party), "GET", "/v1/holdings/totals", token=None),
        }
        for party in world.parties
    }


# ----------------------------------------------------------------- Kafka access


@dataclass(frozen=True)
class RawRecord:
    """A record as it lay on a topic: enough to produce it again byte for byte."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]

    def json(self) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(self.value)
        return decoded

    @property
    def transfer_id(self) -> str | None:
        with contextlib.suppress(ValueError):
            found = self.json().get("transfer_id")
            return None if found is None else str(found)
        return None

    @property
    def message_type(self) -> str | None:
        with contextlib.suppress(ValueError):
            found = self.json().get("message_type")
            return None if found is None else str(found)
        return None

    @property
    def sender_party(self) -> str | None:
        with contextlib.suppress(ValueError):
            found = self.json().get("sender_party")
            return None if found is None else str(found)
        return None

    def envelope(self) -> Envelope:
        return Envelope.model_validate_json(self.value)

    def to(self, topic: str) -> RawRecord:
        """The same record (key, value, headers) aimed at another topic."""
        return RawRecord(topic, -1, -1, self.key, self.value, self.headers)


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    deadline = asyncio.get_running_loop().time() + TOPIC_READ_TIMEOUT_S
    while True:
        found = consumer.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, partition) for partition in sorted(found)]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"topic {topic} has no partitions after {TOPIC_READ_TIMEOUT_S} s")
        await consumer._client.force_metadata_update()
        await asyncio.sleep(POLL_INTERVAL_S)


def _consumer(bootstrap: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        request_timeout_ms=KAFKA_REQUEST_TIMEOUT_MS,
    )


def _raw(record: Any) -> RawRecord:
    return RawRecord(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        headers=tuple((name, bytes(value)) for name, value in record.headers),
    )


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = _consumer(bootstrap)
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic)
        ends = await consumer.end_offsets(partitions)
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def read_topic(
    bootstrap: str, topic: str, *, since: Mapping[int, int] | None = None
) -> list[RawRecord]:
    """Every record of ``topic`` from ``since`` (default: the beginning) to its end now."""
    consumer = _consumer(bootstrap)
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic)
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, (since or {}).get(tp.partition, 0))
        ends = await consumer.end_offsets(partitions)
        records: list[RawRecord] = []
        async with asyncio.timeout(TOPIC_READ_TIMEOUT_S):
            while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                fetched = await consumer.getmany(timeout_ms=KAFKA_POLL_TIMEOUT_MS)
                for batch in fetched.values():
                    records.extend(_raw(record) for record in batch)
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()


async def records_of(
    bootstrap: str, topic: str, transfer_id: str, *, since: Mapping[int, int] | None = None
) -> list[RawRecord]:
    return [
        record
        for record in await read_topic(bootstrap, topic, since=since)
        if record.transfer_id == transfer_id
    ]


async def wait_for_record(
    bootstrap: str,
    topic: str,
    transfer_id: str,
    message_type: str,
    *,
    since: Mapping[int, int] | None = None,
    timeout_s: float = RECORD_APPEAR_TIMEOUT_S,
    sender: str | None = None,
) -> RawRecord:
    """Consume ``topic`` from ``since`` until a ``message_type`` record of the transfer shows
    (with ``sender``: one that Party signed, when several Parties write about one id)."""
    consumer = _consumer(bootstrap)
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic)
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, (since or {}).get(tp.partition, 0))
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            fetched = await consumer.getmany(timeout_ms=KAFKA_POLL_TIMEOUT_MS)
            for batch in fetched.values():
                for record in map(_raw, batch):
                    if (
                        record.transfer_id == transfer_id
                        and record.message_type == message_type
                        and (sender is None or record.sender_party == sender)
                    ):
                        return record
        from_whom = "" if sender is None else f" from {sender}"
        raise AssertionError(
            f"no {message_type}{from_whom} of {transfer_id} on {topic} within {timeout_s:.0f} s"
        )
    finally:
        await consumer.stop()


async def produce(bootstrap: str, records: Sequence[RawRecord]) -> dict[str, dict[int, int]]:
    """Produce the records again (same topic, key, value, headers), in order; returns
    each topic's end offsets afterwards, the mark a node must consume past."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=KAFKA_REQUEST_TIMEOUT_MS,
    )
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(
                record.topic,
                record.value,
                key=record.key,
                headers=list(record.headers),
            )
    finally:
        await producer.stop()
    return {
        topic: await end_offsets(bootstrap, topic) for topic in {record.topic for record in records}
    }


async def produce_placed(bootstrap: str, records: Sequence[RawRecord]) -> list[RawRecord]:
    """Produce the records in order; returns each as placed (its partition and offset)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=KAFKA_REQUEST_TIMEOUT_MS,
    )
    await producer.start()
    placed: list[RawRecord] = []
    try:
        for record in records:
            metadata = await producer.send_and_wait(
                record.topic, record.value, key=record.key, headers=list(record.headers)
            )
            placed.append(
                RawRecord(
                    record.topic,
                    metadata.partition,
                    metadata.offset,
                    record.key,
                    record.value,
                    record.headers,
                )
            )
    finally:
        await producer.stop()
    return placed


def marks_past(records: Iterable[RawRecord]) -> dict[str, dict[int, int]]:
    """Per topic and partition, the offset just past the last of ``records``: what a
    node's consumer group must have committed once it has handled all of them."""
    marks: dict[str, dict[int, int]] = {}
    for record in records:
        if record.offset < 0:
            raise ValueError(f"{record.topic}: a record not yet placed has no offset")
        partitions = marks.setdefault(record.topic, {})
        partitions[record.partition] = max(partitions.get(record.partition, 0), record.offset + 1)
    return marks


async def create_inbox_topic(bootstrap: str, party: str) -> None:
    """Create the inbox of a member that runs no node (a node creates its own at start,
    with these settings), and wait until the broker lists its partitions."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="e2e-transfer-tests",
        request_timeout_ms=KAFKA_REQUEST_TIMEOUT_MS,
    )
    await admin.start()
    try:
        response = await admin.create_topics(
            [
                NewTopic(
                    name=inbox_topic(party),
                    num_partitions=INBOX_TOPIC_PARTITIONS,
                    replication_factor=INBOX_TOPIC_REPLICATION_FACTOR,
                )
            ],
            timeout_ms=KAFKA_REQUEST_TIMEOUT_MS,
        )
    finally:
        await admin.close()
    for topic_error in response.topic_errors:
        name, code = topic_error[0], topic_error[1]
        if code not in (KAFKA_NO_ERROR, TopicAlreadyExistsError.errno):
            raise AssertionError(f"the broker refused to create {name}: error code {code}")
    await end_offsets(bootstrap, inbox_topic(party))  # fails if no partition shows in time


async def committed_offsets(bootstrap: str, group_id: str, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="e2e-transfer-tests",
        request_timeout_ms=KAFKA_REQUEST_TIMEOUT_MS,
    )
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group_id)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


async def wait_consumed(
    bootstrap: str,
    group_id: str,
    topic: str,
    marks: Mapping[int, int],
    *,
    timeout_s: float = CONSUMED_TIMEOUT_S,
) -> None:
    """Until the group has committed at least ``marks`` on every partition of ``topic``:
    offsets are committed only after the handling transaction, so by then the node has
    applied (or dropped) everything before the marks."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    committed: dict[int, int] = {}
    while asyncio.get_running_loop().time() < deadline:
        committed = await committed_offsets(bootstrap, group_id, topic)
        if all(
            committed.get(partition, 0) >= mark for partition, mark in marks.items() if mark > 0
        ):
            return
        await asyncio.sleep(POLL_INTERVAL_S * 5)
    raise AssertionError(
        f"group {group_id} did not consume {topic} up to {dict(marks)} within "
        f"{timeout_s:.0f} s (committed: {committed})"
    )


async def wait_party_consumed(
    world: World, party: str, marks_by_topic: Mapping[str, Mapping[int, int]]
) -> None:
    """Until ``party`` has consumed its inbox and the decision topic past the marks."""
    for topic, marks in marks_by_topic.items():
        if topic == inbox_topic(party):
            group = INBOX_GROUP_TEMPLATE.format(party=party)
        elif topic == DECISION_TOPIC:
            group = DECISION_GROUP_TEMPLATE.format(party=party)
        else:
            continue
        await wait_consumed(world.kafka_bootstrap, group, topic, marks)


def forge(envelope: Envelope, **payload_changes: Any) -> Envelope:
    """The envelope with payload changes, a fresh message id, and signed with a key that
    is not the claimed sender's: what an attacker without the sender's key can produce."""
    payload = envelope.payload.model_copy(update=payload_changes)
    wrong_key = Ed25519PrivateKey.generate()
    return seal(
        payload,
        sender_party=envelope.sender_party,
        sent_at=envelope.sent_at,
        message_id=uuid.uuid4(),
        private_key=wrong_key,
    )


def as_record(template: RawRecord, envelope: Envelope, *, topic: str | None = None) -> RawRecord:
    """A record shaped like ``template`` carrying ``envelope``: the template's headers and
    key, with every value that named the template's message, transfer, type or sender
    renamed to the new envelope's, so the record looks like one the nodes write."""
    original = template.envelope()
    renames = {
        str(original.message_id).encode(): str(envelope.message_id).encode(),
        str(original.transfer_id).encode(): str(envelope.transfer_id).encode(),
        str(original.message_type).encode(): str(envelope.message_type).encode(),
        original.sender_party.encode(): envelope.sender_party.encode(),
    }
    headers = tuple((name, renames.get(raw, raw)) for name, raw in template.headers)
    key = template.key
    if key is not None:
        key = key.replace(str(original.transfer_id).encode(), str(envelope.transfer_id).encode())
    return RawRecord(
        topic=topic or template.topic,
        partition=-1,
        offset=-1,
        key=key,
        value=envelope.model_dump_json().encode(),
        headers=headers,
    )
