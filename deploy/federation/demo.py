#!/usr/bin/env python3
"""``make demo``: a local federation of Article 6.2 registry nodes telling one story.

    python deploy/federation/demo.py [--parties 3..5] [--base-dir var/demo] [--exit]
                                     [--secure] [--brokers 1|3]

Starts a local Kafka broker (reused if one already answers), one registry node
process per Party (CHE, GHA, THA; with ``--parties 4`` or ``5`` also SGP, JPN),
seeds them through their APIs, then runs a scripted story: first transfers, an
onward transfer, a refused transfer, a use towards an NDC and an OMGE
cancellation, and prints a summary per Party. It then keeps the federation
running until Ctrl-C (``--exit``: stops right after the summary) and stops the
nodes and the broker it started.

``--secure`` runs the same story the way a federation of real Parties would:
the demo initialises the nodes, creates the federation's PKI from their
directory (``deploy/kafka/pki.py``: a CA, a key and certificate per broker, for
the admin and per Party, keys readable by their owner only), starts TLS brokers
that require a client certificate and refuse whatever no ACL allows
(``deploy/kafka/broker.py --tls-dir``), writes the topics and ACLs as the
federation admin (``deploy/kafka/acls.py apply``) and starts each node as its
own principal (``REGISTRY_KAFKA_SECURITY_PROTOCOL=SSL`` and its certificate).
``--brokers 3`` makes it a three-broker KRaft cluster (ports PORT, PORT+2,
PORT+4, controllers one above each) with topics of three replicas, two in
sync. The PKI and the brokers' data live in the base directory, so every such
run starts from a new CA and empty brokers, and the cluster is never reused:
one already listening on its ports is an error.

However it is stopped, it leaves nothing running. The first SIGINT, SIGTERM or
SIGHUP starts the cleanup and later ones are ignored until it is done (a
supervisor's SIGTERM to the process group reaches the demo once directly and
may reach it again through ``make``; Ctrl-C pressed twice must not cut the
cleanup short). The cleanup is bounded by the launcher's and the broker's stop
timeouts. If the demo itself is killed outright, or the process that started it
(``make``) is, the kernel ends the rest: the demo asks for SIGTERM when its
parent dies, and its nodes and broker for SIGTERM when the demo dies
(``die_with_parent.py``).

Every step goes through the operator API of the node that would do it in real
life; cross-border transfers use ``POST /v1/transfers``. Where a node does not
serve that endpoint yet, the step says so and the story goes on.
"""

from __future__ import annotations

import argparse
import importlib.util
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any, Protocol

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as a script: make `deploy.federation` importable
    sys.path.insert(0, str(REPO_ROOT))

from deploy.federation.die_with_parent import set_parent_death_signal  # noqa: E402
from deploy.federation.launcher import (  # noqa: E402
    Federation,
    FederationError,
    FederationSpec,
    NodeClient,
    PartySpec,
    die_with_us_prefix,
)
from deploy.federation.seed import (  # noqa: E402
    SeedError,
    national_account,
    seed_federation,
)
from rich.console import Console  # noqa: E402
from rich.panel import Panel  # noqa: E402
from rich.table import Table  # noqa: E402

ALL_PARTIES = ("CHE", "GHA", "THA", "SGP", "JPN")
PARTIES_MIN = 3
DEFAULT_BASE_DIR = REPO_ROOT / "var" / "demo"
DEFAULT_KAFKA_PORT = 9092
DEFAULT_API_PORT_BASE = 8101
# One broker is the default; three is the smallest cluster that survives losing one.
BROKER_COUNTS = (1, 3)
# --secure or --brokers 3: the cluster's own files, inside the (wiped) base directory.
PKI_DIR_NAME = "kafka-pki"
BROKER_DATA_DIR_TEMPLATE = "kafka-{port}"
# deploy/kafka/pki.py create: an interpreter start and a few EC keys, about a second.
PKI_CREATE_TIMEOUT_S = 60.0
# deploy/kafka/acls.py apply: topic creation on a fresh cluster waits for leaders to be
# elected, a few seconds; past this the admin cannot reach the cluster.
ACLS_APPLY_TIMEOUT_S = 180.0
INIT_STATUS = "Initialising one registry node per Party (registry-node init)"
# One connect to see whether a port of the cluster is taken already.
PORT_PROBE_TIMEOUT_S = 1.0

# How long POST /v1/transfers may wait at the coordinating node for a final state;
# a commit over a local broker takes well under a second once the nodes are warm.
TRANSFER_WAIT_S = 20
# After that, how long the demo keeps polling GET /v1/transfers/{id} (coordinator,
# then the acquiring node) before it reports the transfer as still pending.
TRANSFER_FINAL_TIMEOUT_S = 30.0
TRANSFER_POLL_INTERVAL_S = 0.25
# A transfer's status at a node: PENDING until the decision, then one of these.
COMMITTED = "COMMITTED"
FINAL_STATUSES = frozenset({COMMITTED, "ABORTED"})

# Why CHE may not pass Ghanaian CA0001 units to THA: THA is no party to CA0001,
# and Ghana's LoA does not authorise THA.
EXPECTED_REFUSALS = frozenset(
    {
        "PARTY_NOT_IN_COOPERATIVE_APPROACH",
        "PARTY_NOT_AUTHORISED",
        "NOT_COVERED_BY_COOPERATIVE_APPROACH",
    }
)

console = Console()


# --------------------------------------------------------------------- the broker


def _broker_script() -> ModuleType:
    """deploy/kafka/broker.py is a script, not a package: load it by path."""
    name = "a6_deploy_kafka_broker"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "deploy/kafka/broker.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {REPO_ROOT / 'deploy/kafka/broker.py'}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class OwnCluster:
    """The brokers a ``--secure`` or ``--brokers 3`` demo starts for itself, and their PKI."""

    port: int
    brokers: int
    secure: bool
    base_dir: Path
    # Set just before the start, so that a stop signal during it stops what started.
    started: bool = False

    @property
    def ports(self) -> list[int]:
        return [int(port) for port in _broker_script().cluster_ports(self.port, self.brokers)]

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.ports)

    @property
    def data_dirs(self) -> list[Path]:
        return [self.base_dir / BROKER_DATA_DIR_TEMPLATE.format(port=port) for port in self.ports]

    @property
    def pki_dir(self) -> Path:
        return self.base_dir / PKI_DIR_NAME

    @property
    def description(self) -> str:
        what = "one broker" if self.brokers == 1 else f"a cluster of {self.brokers} brokers"
        if not self.secure:
            return f"{what}, PLAINTEXT"
        return f"{what}, TLS with client certificates required, ACLs refusing by default"

    def busy_ports(self) -> list[int]:
        """Client and controller ports that already accept connections."""
        controller = _broker_script().controller_port
        every = [p for port in self.ports for p in (port, controller(port))]
        return [port for port in every if _accepts_connections(port)]

    def start(self) -> str:
        return str(
            _broker_script().start_cluster(
                self.port,
                self.brokers,
                tls_dir=self.pki_dir if self.secure else None,
                data_dirs=self.data_dirs,
                command_prefix=die_with_us_prefix(),
            )
        )

    def stop(self) -> int:
        return int(_broker_script().stop_cluster(self.port, self.brokers, data_dirs=self.data_dirs))


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=PORT_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


class ProvisioningError(RuntimeError):
    """pki.py or acls.py failed; the message carries what it printed."""


def _run_deploy_script(script: str, arguments: list[str], timeout_s: float) -> str:
    """Run deploy/kafka/<script> with this interpreter, as an operator would; its stderr."""
    command = [sys.executable, str(REPO_ROOT / "deploy" / "kafka" / script), *arguments]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise ProvisioningError(f"{script} did not finish in {timeout_s:.0f} s") from None
    if done.returncode != 0:
        raise ProvisioningError(
            f"{script} failed (exit {done.returncode}): "
            f"{(done.stderr.strip() or done.stdout.strip())[-2000:]}"
        )
    return done.stderr


def create_pki(cluster: OwnCluster, directory_path: Path) -> None:
    """The federation CA and every certificate, for the members of the directory."""
    _run_deploy_script(
        "pki.py",
        [
            "create",
            "--dir",
            str(cluster.pki_dir),
            "--directory",
            str(directory_path),
            "--brokers",
            str(cluster.brokers),
        ],
        PKI_CREATE_TIMEOUT_S,
    )


def apply_acls(cluster: OwnCluster, directory_path: Path) -> int:
    """As the federation admin: the topics, then the ACLs of the directory; how many ACLs."""
    output = _run_deploy_script(
        "acls.py",
        [
            "apply",
            "--bootstrap",
            cluster.bootstrap,
            "--pki",
            str(cluster.pki_dir),
            "--directory",
            str(directory_path),
            "--replicas",
            "3" if cluster.brokers >= 3 else "1",
        ],
        ACLS_APPLY_TIMEOUT_S,
    )
    return sum(1 for line in output.splitlines() if line.startswith("[acls] ALLOW "))


def configure_node_tls(node: NodeClient, pki_dir: Path) -> str:
    """Point the node's own config at its certificate; the Kafka principal it will be."""
    party_dir = pki_dir / "parties" / node.party
    with node.env_file.open("a") as config:
        config.write(
            "REGISTRY_KAFKA_SECURITY_PROTOCOL=SSL\n"
            f"REGISTRY_KAFKA_SSL_CA_PATH={pki_dir / 'ca' / 'ca.crt'}\n"
            f"REGISTRY_KAFKA_SSL_CERT_PATH={party_dir / 'node.crt'}\n"
            f"REGISTRY_KAFKA_SSL_KEY_PATH={party_dir / 'node.key'}\n"
        )
    return f"User:party.{node.party}"


# ---------------------------------------------------------------------- transfers


@dataclass
class Outcome:
    """What one story step ended with, for the progress line and the summary."""

    ok: bool
    text: str
    transfer_id: str | None = None
    reasons: tuple[str, ...] = ()


def _error_reason(body: Any, status: int) -> tuple[str, str]:
    if isinstance(body, dict) and "reason" in body:
        return str(body["reason"]), str(body.get("message", ""))
    return f"HTTP_{status}", str(body)[:200]


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _poll_state(node: NodeClient, transfer_id: str, deadline: float) -> dict[str, Any] | None:
    """GET /v1/transfers/{id} until a final state or the deadline; the last body seen."""
    last: dict[str, Any] | None = None
    with node.operator() as client:
        while True:
            response = client.get(f"/v1/transfers/{transfer_id}")
            if response.is_success:
                last = response.json()
                if last["status"] in FINAL_STATUSES:
                    return last
            if time.monotonic() >= deadline:
                return last
            time.sleep(TRANSFER_POLL_INTERVAL_S)


def cross_border_transfer(
    sender: NodeClient, receiver: NodeClient, body: dict[str, Any]
) -> Outcome:
    """``POST /v1/transfers`` at the sender, then follow it to a final state at both ends."""
    transfer_id = str(uuid.uuid4())
    request = {"transfer_id": transfer_id, "to_party": receiver.party, **body}
    with sender.operator() as client:
        response = client.post(
            "/v1/transfers",
            params={"wait_s": TRANSFER_WAIT_S},
            json=request,
            headers={"Idempotency-Key": transfer_id},
        )
    answer = _json(response)
    if not response.is_success:
        reason, message = _error_reason(answer, response.status_code)
        codes = tuple(str(code) for code in answer.get("reasons", [reason]))
        return Outcome(
            False,
            f"refused by {sender.party}: {', '.join(codes)}: {message}",
            transfer_id,
            codes,
        )
    state = answer["status"]
    if state not in FINAL_STATUSES:
        polled = _poll_state(sender, transfer_id, time.monotonic() + TRANSFER_FINAL_TIMEOUT_S)
        if polled is not None:
            answer, state = polled, polled["status"]
    reason_codes = tuple(str(reason) for reason in answer.get("reasons") or [])
    reasons = ", ".join(reason_codes) or "none given"
    if state not in FINAL_STATUSES:
        return Outcome(False, f"still {state} after {TRANSFER_FINAL_TIMEOUT_S:.0f} s", transfer_id)
    if state != COMMITTED:
        return Outcome(False, f"{state}, reasons: {reasons}", transfer_id, reason_codes)
    # The coordinator knows first; wait until the acquiring node has applied it too.
    at_receiver = _poll_state(receiver, transfer_id, time.monotonic() + TRANSFER_FINAL_TIMEOUT_S)
    receiver_state = "unknown" if at_receiver is None else at_receiver["status"]
    return Outcome(
        receiver_state == COMMITTED,
        f"{state} at {sender.party}, {receiver_state} at {receiver.party}",
        transfer_id,
    )


# ------------------------------------------------------------------------ queries


def _get(node: NodeClient, path: str, params: dict[str, Any] | None = None) -> Any:
    with node.operator() as client:
        response = client.get(f"/v1{path}", params=params)
    return response.json() if response.is_success else None


def ca_balances(node: NodeClient) -> dict[int, int]:
    ledger = _get(node, "/ca-ledger") or {"balances": []}
    balances: dict[int, int] = {}
    for balance in ledger["balances"]:
        balances[int(balance["year"])] = balances.get(int(balance["year"]), 0) + int(
            balance["quantity"]
        )
    return balances


def held(node: NodeClient, account_id: str, approach: str | None = None) -> int:
    params = {"cooperative_approach_id": approach} if approach else None
    body = _get(node, f"/accounts/{account_id}/holdings", params)
    return 0 if body is None else int(body["total_quantity"])


def totals(node: NodeClient) -> dict[str, int]:
    rows = _get(node, "/holdings/totals") or []
    summed = {"held": 0, "retired": 0, "cancelled": 0}
    for row in rows:
        for key in summed:
            summed[key] += int(row[key])
    return summed


def transfer_counts(node: NodeClient) -> tuple[str, str]:
    """(in, out) from GET /v1/transfers, or ("n/a", "n/a") where it is not served."""
    body = _get(node, "/transfers")
    if not isinstance(body, dict):
        return "n/a", "n/a"
    incoming = outgoing = 0
    for item in body.get("items", []):
        direction = str(item.get("direction", "")).upper()
        if direction == "INCOMING" or item.get("to_party") == node.party:
            incoming += 1
        elif direction == "OUTGOING" or item.get("from_party") == node.party:
            outgoing += 1
    return str(incoming), str(outgoing)


def _signed(quantity: int) -> str:
    return f"{quantity:+,}"


# -------------------------------------------------------------------------- story


class Nodes(Protocol):
    """What the story needs of a federation: its nodes as a client sees them. The local
    :class:`Federation` is one; deploy/containers/compose_demo.py passes the nodes of
    the docker-compose federation."""

    @property
    def nodes(self) -> Mapping[str, NodeClient]: ...

    def node(self, party: str) -> NodeClient: ...


@dataclass
class Story:
    federation: Nodes
    outcomes: list[tuple[str, Outcome]] = field(default_factory=list)

    def node(self, party: str) -> NodeClient:
        return self.federation.node(party)

    def has(self, *parties: str) -> bool:
        return all(party in self.federation.nodes for party in parties)

    def step(self, title: str, run: Callable[[], Outcome]) -> Outcome:
        number = len(self.outcomes) + 1
        with console.status(f"[bold]{number}. {title}[/]"):
            try:
                outcome = run()
            except Exception as error:  # one broken step must not end the demo
                outcome = Outcome(False, f"{error.__class__.__name__}: {error}")
        mark = "[green]✔[/]" if outcome.ok else "[red]✘[/]"
        console.print(f" {mark} [bold]{number}. {title}[/]\n      {outcome.text}", highlight=False)
        self.outcomes.append((title, outcome))
        return outcome

    def transfer(
        self, sender: str, receiver: str, quantity: int, approach: str, **extra: Any
    ) -> Outcome:
        body = {
            "from_account_id": national_account(sender),
            "to_account_id": extra.pop("to_account_id", national_account(receiver)),
            "quantity": quantity,
            "cooperative_approach_id": approach,
            "purpose": extra.pop("purpose", "NDC"),
            **extra,
        }
        return cross_border_transfer(self.node(sender), self.node(receiver), body)


def first_transfer_gha_che(story: Story) -> Outcome:
    before = ca_balances(story.node("GHA")).get(2024, 0)
    outcome = story.transfer(
        "GHA", "CHE", 10_000, "CA0001", vintage=2024, authorisation_id="GHA-LOA-CA0001-001"
    )
    if outcome.ok:
        after = ca_balances(story.node("GHA")).get(2024, 0)
        outcome.text += (
            f"; CHE-GOV now holds {held(story.node('CHE'), 'CHE-GOV', 'CA0001'):,} CA0001"
            f"; GHA's corresponding adjustment for 2024: {_signed(after - before)}"
        )
    return outcome


def first_transfer_tha_che(story: Story) -> Outcome:
    tha = story.node("THA")
    cancelled_before = totals(tha)["cancelled"]
    outcome = story.transfer(
        "THA", "CHE", 2_000, "CA0002", vintage=2023, authorisation_id="THA-LOA-CA0002-001"
    )
    if outcome.ok:
        omge = totals(tha)["cancelled"] - cancelled_before
        outcome.text += (
            f"; CA0002's 2 % OMGE share: {omge:,} units cancelled at THA"
            f"; THA's adjustment for 2023: {_signed(ca_balances(tha).get(2023, 0))}"
        )
    return outcome


def onward_transfer_che_tha(story: Story) -> Outcome:
    """GHA first-transfers CA0005 units to CHE, and CHE passes part of them on to THA."""
    first = story.transfer(
        "GHA", "CHE", 1_000, "CA0005", vintage=2024, authorisation_id="GHA-LOA-CA0005-001"
    )
    if not first.ok:
        first.text = f"the first transfer GHA -> CHE of CA0005 did not commit: {first.text}"
        return first
    che = story.node("CHE")
    ledgers_before = {party: ca_balances(story.node(party)) for party in ("GHA", "CHE", "THA")}
    outcome = story.transfer("CHE", "THA", 500, "CA0005", authorisation_id="GHA-LOA-CA0005-001")
    if outcome.ok:
        unchanged = all(
            ca_balances(story.node(party)) == before for party, before in ledgers_before.items()
        )
        outcome.text += f"; CHE keeps {held(che, 'CHE-GOV', 'CA0005'):,} CA0005" + (
            "; no second corresponding adjustment anywhere"
            if unchanged
            else "; [red]a ledger changed: an onward transfer must not adjust[/]"
        )
    return outcome


def refused_transfer_che_tha(story: Story) -> Outcome:
    outcome = story.transfer("CHE", "THA", 100, "CA0001", authorisation_id="GHA-LOA-CA0001-001")
    # Refusal for the right reason is the expected end of this step; a refusal for
    # another reason (a malformed request, say) is not.
    expected = not outcome.ok and bool(EXPECTED_REFUSALS.intersection(outcome.reasons))
    outcome.ok = expected
    outcome.text = (
        f"refused as it should be (THA is no party to CA0001): {outcome.text}"
        if expected
        else f"[red]expected a refusal[/]: {outcome.text}"
    )
    return outcome


def use_towards_ndc(story: Story) -> Outcome:
    party, quantity, node = "CHE", 3_000, story.node("CHE")
    note = "an acquired ITMO: CHE's balance for 2025 goes down"
    before = ca_balances(node).get(2025, 0)
    with node.operator() as client:
        response = client.post(
            "/v1/uses",
            json={
                "account_id": national_account(party),
                "quantity": quantity,
                "cooperative_approach_id": "CA0001",
                "purpose": "NDC",
                "year_of_use": 2025,
            },
        )
    if not response.is_success:
        reason, message = _error_reason(_json(response), response.status_code)
        return Outcome(False, f"{party} refused: {reason}: {message}")
    change = ca_balances(node).get(2025, 0) - before
    return Outcome(
        True, f"{party} used {quantity:,} CA0001 for 2025 ({note}); adjustment {_signed(change)}"
    )


def omge_cancellation(story: Story) -> Outcome:
    gha = story.node("GHA")
    with gha.operator() as client:
        response = client.post(
            "/v1/cancellations",
            json={
                "account_id": national_account("GHA"),
                "quantity": 200,
                "cooperative_approach_id": "CA0001",
                "kind": "OMGE",
            },
        )
    if not response.is_success:
        reason, message = _error_reason(_json(response), response.status_code)
        return Outcome(False, f"GHA refused: {reason}: {message}")
    first = response.json()["blocks"][0]
    return Outcome(
        True,
        f"GHA cancelled 200 CA0001 units for overall mitigation in global emissions "
        f"({first['first_identifier']} ...); they can never be used or transferred",
    )


def run_story(story: Story) -> None:
    console.rule("[bold]The story")
    story.step(
        "First transfer GHA → CHE: 10,000 CA0001 (vintage 2024) for the Swiss NDC",
        lambda: first_transfer_gha_che(story),
    )
    story.step(
        "First transfer THA → CHE: 2,000 CA0002 Bangkok e-bus units (vintage 2023)",
        lambda: first_transfer_tha_che(story),
    )
    story.step(
        "Onward transfer: GHA → CHE 1,000 CA0005, then CHE → THA 500 of them",
        lambda: onward_transfer_che_tha(story),
    )
    story.step(
        "Refused transfer CHE → THA: 100 Ghanaian CA0001 units",
        lambda: refused_transfer_che_tha(story),
    )
    if story.has("SGP"):
        story.step(
            "First transfer GHA → SGP: 1,000 CA0003 clean-cookstove units",
            lambda: story.transfer(
                "GHA", "SGP", 1_000, "CA0003", authorisation_id="GHA-LOA-CA0003-001"
            ),
        )
    if story.has("JPN"):
        story.step(
            "Transfer THA → JPN: 500 CA0004 JCM units for OIMP (first transfer was at issuance)",
            lambda: story.transfer(
                "THA", "JPN", 500, "CA0004", purpose="OIMP", authorisation_id="THA-LOA-CA0004-001"
            ),
        )
    story.step("Use towards an NDC", lambda: use_towards_ndc(story))
    story.step("OMGE cancellation at GHA: 200 CA0001", lambda: omge_cancellation(story))


# ------------------------------------------------------------------------ summary


def print_summary(federation: Federation) -> None:
    print_party_table(federation.nodes.values())
    # Plain lines, not a table: URLs and tokens must not be folded, people copy them.
    console.rule("[bold]Each node")
    for node in federation.nodes.values():
        console.print(
            f"[bold]{node.party}[/] ({node.registry_id})  API docs {node.docs_url}  "
            f"public page {node.public_url}\n"
            f"     operator token {node.operator_token}\n"
            f"     log {_relative(node.log_path)}",
            highlight=False,
            soft_wrap=True,
        )
    node = next(iter(federation.nodes.values()))
    console.print(
        f"Try: curl -H 'Authorization: Bearer {node.operator_token}' "
        f"{node.api_url}/v1/accounts/{national_account(node.party)}/holdings",
        highlight=False,
        soft_wrap=True,
    )
    console.print(f"Federation directory: {_relative(federation.directory_path)}", highlight=False)


def print_party_table(nodes: Iterable[NodeClient]) -> None:
    """Holdings, transfers and corresponding adjustments per Party, one row each."""
    table = Table(title="Per Party, after the story", title_style="bold")
    for column in ("Party", "held", "retired", "cancelled", "in", "out"):
        table.add_column(column, justify="left" if column == "Party" else "right")
    table.add_column("CA balance by year", no_wrap=True)
    for node in nodes:
        summed = totals(node)
        incoming, outgoing = transfer_counts(node)
        balances = ca_balances(node)
        table.add_row(
            node.party,
            f"{summed['held']:,}",
            f"{summed['retired']:,}",
            f"{summed['cancelled']:,}",
            incoming,
            outgoing,
            ", ".join(f"{year}: {_signed(q)}" for year, q in sorted(balances.items())) or "none",
        )
    console.print(table)
    console.print(
        "[dim]in/out: cross-border transfers at this node; CA: corresponding adjustments "
        "(+ first transfers out, - uses of acquired ITMOs)[/]"
    )


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- main


# Each of these stops the demo, once: `kill`, Ctrl-C, a closed terminal.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _ignore_stop_signals() -> None:
    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, signal.SIG_IGN)


@contextmanager
def _stop_signals_as_one_interrupt() -> Iterator[None]:
    """The first stop signal becomes a KeyboardInterrupt and cleans up like Ctrl-C;
    the handler ignores every later one at once, so no second signal can interrupt
    the cleanup halfway and orphan the nodes or the broker."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        _ignore_stop_signals()
        raise KeyboardInterrupt

    previous = {stop_signal: signal.signal(stop_signal, interrupt) for stop_signal in STOP_SIGNALS}
    try:
        yield
    finally:
        for stop_signal, handler in previous.items():
            signal.signal(stop_signal, handler)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--parties",
        type=int,
        default=PARTIES_MIN,
        choices=range(PARTIES_MIN, len(ALL_PARTIES) + 1),
        help=f"how many of {', '.join(ALL_PARTIES)} (default {PARTIES_MIN})",
    )
    parser.add_argument("--base-dir", type=Path, default=DEFAULT_BASE_DIR, help="wiped each run")
    parser.add_argument("--kafka-port", type=int, default=DEFAULT_KAFKA_PORT)
    parser.add_argument("--api-port-base", type=int, default=DEFAULT_API_PORT_BASE)
    parser.add_argument("--exit", action="store_true", help="stop after the summary")
    parser.add_argument(
        "--secure",
        action="store_true",
        help="TLS brokers, one certificate and Kafka principal per Party, ACLs from the directory",
    )
    parser.add_argument(
        "--brokers",
        type=int,
        default=BROKER_COUNTS[0],
        choices=BROKER_COUNTS,
        help="1 (default) or a three-broker cluster on --kafka-port, +2, +4",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    parties = ALL_PARTIES[: args.parties]
    started = time.monotonic()
    own = (
        OwnCluster(args.kafka_port, args.brokers, args.secure, args.base_dir.resolve())
        if args.secure or args.brokers > 1
        else None
    )
    kafka = "a real Apache Kafka broker" if own is None else f"Apache Kafka: {own.description}"
    principals = "; each node connects as its own Kafka principal" if args.secure else ""
    console.print(
        Panel(
            # One paragraph, wrapped by rich to the terminal's width.
            "A federation of national Article 6.2 registries on this machine: one registry "
            f"node process per Party ({', '.join(parties)}), each with its own database "
            f"and signing key, talking over {kafka}{principals}.",
            title="Article 6.2 registry federation demo",
        )
    )
    broker = _broker_script()
    broker_started_here = False
    federation: Federation | None = None
    # Non-zero when a step of the story did not end as expected (for --exit in scripts).
    story_status = 0
    with _stop_signals_as_one_interrupt():
        # Before any child exists: if whoever started us (make) dies, we get SIGTERM
        # and clean up as for any other stop signal.
        set_parent_death_signal(signal.SIGTERM)
        try:
            if own is None:
                broker_was_up = broker.broker_is_up(args.kafka_port)
                # Decided before the start, so a stop signal during it still stops the broker.
                broker_started_here = not broker_was_up
                with console.status("Starting Kafka (the first run fetches its jars, ~45 MB)"):
                    bootstrap = broker.start_broker(
                        port=args.kafka_port, command_prefix=die_with_us_prefix()
                    )
                console.print(
                    f" [green]✔[/] Kafka at {bootstrap} "
                    f"({'started' if broker_started_here else 'already running, reused'})"
                )
                federation = _federation(args, parties, bootstrap)
                with console.status(
                    "Initialising one registry node per Party (registry-node init)"
                ):
                    federation.prepare()
                with console.status("Starting the nodes and waiting for /v1/health"):
                    federation.start()
                _print_nodes(federation)
            else:
                _refuse_busy_ports(own)
                federation = _federation(args, parties, own.bootstrap)
                _start_own_cluster(own, federation)
            with console.status("Seeding accounts, cooperative approaches, LoAs, issuances"):
                seeded = seed_federation(federation.nodes)
            console.print(
                f" [green]✔[/] seeded: {sum(seeded.issued.values()):,} units issued, "
                f"{len({a for ids in seeded.approaches.values() for a in ids})} cooperative "
                "approaches registered by both of their Parties"
            )
            story = Story(federation)
            run_story(story)
            print_summary(federation)
            failed = [title for title, outcome in story.outcomes if not outcome.ok]
            if failed:
                console.print(f"[bold red]{len(failed)} step(s) did not end as expected.[/]")
                story_status = 1
            console.print(f"Story told in {time.monotonic() - started:.1f} s.")
            if not args.exit:
                console.print("[bold]The federation keeps running. Press Ctrl-C to stop it.[/]")
                while True:
                    signal.pause()
        except KeyboardInterrupt:
            console.print("\nStopping.")
        except (FederationError, SeedError, ProvisioningError, broker.BrokerError) as error:
            console.print(f"[bold red]error:[/] {error}", highlight=False)
            return 1
        finally:
            # However we got here (a signal, --exit, an error), a stop signal from now
            # on would only cut the cleanup short and leave orphans: ignore it.
            _ignore_stop_signals()
            if federation is not None:
                with console.status("Stopping the nodes"):
                    federation.stop()
                console.print(" [green]✔[/] nodes stopped")
            if own is not None and own.started:
                with console.status("Stopping Kafka"):
                    own.stop()
                console.print(" [green]✔[/] Kafka stopped")
            if broker_started_here:
                with console.status("Stopping Kafka"):
                    broker.stop_broker(port=args.kafka_port)
                console.print(" [green]✔[/] Kafka stopped")
    return story_status


def _federation(args: argparse.Namespace, parties: Sequence[str], bootstrap: str) -> Federation:
    return Federation(
        FederationSpec(
            parties=[PartySpec(party) for party in parties],
            base_dir=args.base_dir,
            kafka_bootstrap=bootstrap,
            api_port_base=args.api_port_base,
            die_with_launcher=True,
        )
    )


def _print_nodes(federation: Federation, principals: Mapping[str, str] | None = None) -> None:
    for node in federation.nodes.values():
        principal = f" as {principals[node.party]}" if principals else ""
        console.print(
            f" [green]✔[/] {node.party} node {node.registry_id} at {node.api_url}{principal} "
            f"(pid {federation.pid(node.party)})"
        )


def _refuse_busy_ports(own: OwnCluster) -> None:
    """Before anything is wiped or started: the demo's cluster is its own, never reused."""
    busy = own.busy_ports()
    if busy:
        raise ProvisioningError(
            f"ports {', '.join(map(str, busy))} are taken: this demo starts its own "
            f"cluster ({own.description}) on {own.bootstrap}, controllers one above each; "
            "stop what listens there or choose another --kafka-port"
        )


def _start_own_cluster(own: OwnCluster, federation: Federation) -> None:
    """--secure / --brokers 3, in the order a federation is set up: the nodes' keys and
    directory first, since the PKI and the ACLs are made from the directory; then the
    brokers, the admin's topics and ACLs, and the nodes, each as its own principal."""
    with console.status(INIT_STATUS):
        # Wipes the base directory of an earlier run: its nodes, PKI and brokers' data.
        federation.prepare()
    console.print(
        f" [green]✔[/] {len(federation.nodes)} nodes initialised, federation directory "
        f"{_relative(federation.directory_path)}"
    )
    if own.secure:
        with console.status("Creating the federation CA and every certificate (pki.py)"):
            create_pki(own, federation.directory_path)
        console.print(
            f" [green]✔[/] PKI in {_relative(own.pki_dir)}: a CA, {own.brokers} broker(s), "
            f"the admin and {', '.join(federation.nodes)} (keys readable by their owner only)"
        )
    # Decided before the start, so a stop signal during it still stops the brokers.
    own.started = True
    with console.status(f"Starting Kafka: {own.description}"):
        own.start()
    console.print(f" [green]✔[/] Kafka at {own.bootstrap} ({own.description}), started")
    principals: dict[str, str] = {}
    if own.secure:
        with console.status("Creating the topics and ACLs as User:federation-admin (acls.py)"):
            count = apply_acls(own, federation.directory_path)
        console.print(
            f" [green]✔[/] topics and {count} ACLs written from the directory by "
            "User:federation-admin; nothing else is allowed"
        )
        principals = {
            party: configure_node_tls(node, own.pki_dir) for party, node in federation.nodes.items()
        }
    with console.status("Starting the nodes and waiting for /v1/health"):
        federation.start()
    _print_nodes(federation, principals)


if __name__ == "__main__":
    sys.exit(main())
