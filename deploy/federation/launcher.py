#!/usr/bin/env python3
"""Launch a local federation of registry nodes, one OS process per Party.

    python deploy/federation/launcher.py up   --parties CHE,GHA,THA --base-dir var/federation
    python deploy/federation/launcher.py down --base-dir var/federation

Library use (the demo and the end-to-end tests)::

    spec = FederationSpec(parties=[PartySpec("CHE"), PartySpec("GHA")], base_dir=path,
                          kafka_bootstrap="127.0.0.1:9092", api_port_base=8101)
    with Federation(spec) as federation:          # prepare() + start(); stop() on exit
        che = federation.node("CHE")
        che.operator().get("/v1/accounts")

``prepare`` runs the real ``registry-node init`` once per Party (its own data
directory ``base_dir/<PARTY>``, its own database and Ed25519 key, local mode),
collects the public keys it prints into one federation directory
(``base_dir/directory.json``, an ``a6wire`` ``FederationDirectory``) and points
every node's ``REGISTRY_DIRECTORY_PATH`` at it. ``start`` spawns
``registry-node serve --env-file ...`` per Party in its own session, so a
signal aimed at one node's process group reaches that node only, and Ctrl-C in
the launching terminal is handled by the launcher, which then stops the nodes
in order. Nothing here imports the node's code: the federation is driven the
way an operator would drive it, through the CLI and the HTTP API.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, Self

import httpx

from a6wire.directory import FederationDirectory, FederationMember
from a6wire.topics import inbox_topic

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]

# `registry-node init` migrates a fresh database; a few seconds on SQLite, longer
# on a PostgreSQL behind a slow link. Past this the command is stuck, not slow.
INIT_TIMEOUT_S = 120.0
# From spawn to a 200 on /v1/health: interpreter start, imports, migrations, uvicorn
# bind. About 2-4 s on a laptop; 60 s leaves room for a loaded CI runner without
# hiding a node that will never come up.
NODE_START_TIMEOUT_S = 60.0
# uvicorn's graceful shutdown after SIGTERM; past this the group gets SIGKILL.
NODE_STOP_TIMEOUT_S = 15.0
# After SIGKILL the kernel reaps quickly; this only bounds the wait for the exit status.
NODE_KILL_WAIT_S = 10.0
# One readiness probe, and the pause between probes.
HEALTH_PROBE_TIMEOUT_S = 2.0
HEALTH_POLL_INTERVAL_S = 0.2
# Operator calls made by the demo and tests; a transfer may wait on the bus.
HTTP_TIMEOUT_S = 60.0
LOG_TAIL_LINES = 40
# Where free_ports looks: above the well-known ports and the brokers tests and the
# demo use (9092, 19092, 19xxx), below Linux's ephemeral range (32768-60999).
FREE_PORT_RANGE = (20000, 32768)  # [first, end)
# Ports probed before giving up: a nearly full range is a machine problem, not bad luck.
FREE_PORT_PROBES_MAX = 200

DEFAULT_API_HOST = "127.0.0.1"
DEFAULT_API_PORT_BASE = 8101
DEFAULT_KAFKA_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_BASE_DIR = REPO_ROOT / "var" / "federation"

CONFIG_FILE_NAME = "registry.env"  # what `registry-node init` writes into the data dir
NODE_LOG_FILE_NAME = "node.log"
DIRECTORY_FILE_NAME = "directory.json"
# Written into every base directory this launcher creates: the record of which
# nodes run from it (for `down`) and the mark that makes a fresh start safe to
# wipe it. A directory without it is never deleted.
STATE_FILE_NAME = "federation.json"
PUBLIC_KEY_PREFIX = "public_key="
ENV_PREFIX = "REGISTRY_"

# party -> SQLAlchemy URL of that Party's own, empty database.
DatabaseUrlFactory = Callable[[str], str]


class FederationError(RuntimeError):
    """The federation could not be prepared, started or stopped; the message says why."""


@dataclass(frozen=True)
class PartySpec:
    """One Party of the federation; its registry id defaults to the Party code + ``01``."""

    party: str
    registry_id: str = ""

    @property
    def resolved_registry_id(self) -> str:
        return self.registry_id or f"{self.party}01"


@dataclass(frozen=True)
class FederationSpec:
    """What to launch.

    ``api_port_base``: node *i* listens on ``api_port_base + i``; ``None`` picks free
    ports (tests, which may run next to a developer's federation).
    ``database``: ``"sqlite"`` gives each node a SQLite file in its data dir; a
    factory gives each Party its own URL (e.g. one PostgreSQL database per Party).
    """

    parties: Sequence[PartySpec]
    base_dir: Path
    kafka_bootstrap: str = DEFAULT_KAFKA_BOOTSTRAP
    api_port_base: int | None = DEFAULT_API_PORT_BASE
    database: Literal["sqlite"] | DatabaseUrlFactory = "sqlite"
    api_host: str = DEFAULT_API_HOST
    registry_node_command: Sequence[str] = ()
    # The nodes get SIGTERM from the kernel when this process exits, however it exits
    # (die_with_parent.py): for the demo, whose nodes must not outlive it. Not for
    # `up`, which leaves its nodes running on purpose.
    die_with_launcher: bool = False
    # The federation authority's public keys (REGISTRY_FEDERATION_AUTHORITY_KEYS of
    # every node): with them the nodes follow the directory versions the authority
    # publishes on the directory topic; without, the directory file is all there is.
    authority_keys: Sequence[str] = ()

    def command(self) -> list[str]:
        """The ``registry-node`` console script of the virtualenv running us."""
        if self.registry_node_command:
            return list(self.registry_node_command)
        for candidate in (
            Path(sys.executable).parent / "registry-node",
            REPO_ROOT / ".venv" / "bin" / "registry-node",
        ):
            if candidate.is_file():
                return [str(candidate)]
        found = shutil.which("registry-node")
        if found is None:
            raise FederationError("no registry-node script found; run `make install` first")
        return [found]


@dataclass
class NodeClient:
    """One node as a client sees it: where it listens and the tokens `init` generated."""

    party: str
    registry_id: str
    api_url: str
    operator_token: str
    auditor_token: str
    public_key_base64: str
    data_dir: Path
    env_file: Path
    database_url: str
    log_path: Path

    @property
    def docs_url(self) -> str:
        return f"{self.api_url}/docs"

    @property
    def public_url(self) -> str:
        return f"{self.api_url}/public"

    def client(self, token: str | None = None) -> httpx.Client:
        """An httpx client on the node's API, with ``token`` as Bearer (none: public)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.api_url, headers=headers, timeout=HTTP_TIMEOUT_S)

    def operator(self) -> httpx.Client:
        return self.client(self.operator_token)

    def auditor(self) -> httpx.Client:
        return self.client(self.auditor_token)

    def public(self) -> httpx.Client:
        return self.client(None)

    def healthy(self) -> bool:
        try:
            response = httpx.get(f"{self.api_url}/v1/health", timeout=HEALTH_PROBE_TIMEOUT_S)
        except httpx.HTTPError:
            return False
        # Ready means every part is up, the broker connection included, not only
        # that the API answers (a degraded node answers 200 too).
        return response.status_code == httpx.codes.OK and response.json().get("status") == "ok"


@dataclass
class _Running:
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass
class Federation:
    """A set of registry node processes on this machine; see the module docstring."""

    spec: FederationSpec
    nodes: dict[str, NodeClient] = field(default_factory=dict)
    _running: dict[str, _Running] = field(default_factory=dict)

    # ------------------------------------------------------------------ prepare

    @property
    def directory_path(self) -> Path:
        return self.spec.base_dir / DIRECTORY_FILE_NAME

    @property
    def state_path(self) -> Path:
        return self.spec.base_dir / STATE_FILE_NAME

    def prepare(self, *, fresh: bool = True) -> None:
        """``registry-node init`` per Party, then one directory for all of them.

        ``fresh`` wipes a base directory this launcher made before (it holds the
        state file), so every run starts from empty databases and new keys; a
        directory the launcher did not make is refused rather than deleted.
        """
        base = self.spec.base_dir.resolve()
        self.spec = _replace_base(self.spec, base)
        parties = [party.party for party in self.spec.parties]
        if len(set(parties)) != len(parties):
            raise FederationError(f"a Party is listed twice: {parties}")
        if fresh:
            _wipe_own_base_dir(base)
        base.mkdir(parents=True, exist_ok=True)
        ports = self._ports()
        # `init` is mostly interpreter start-up and migrations, independent per Party:
        # run them side by side, one per CPU.
        with ThreadPoolExecutor(max_workers=max(1, min(len(ports), os.cpu_count() or 1))) as pool:
            initialised = list(pool.map(self._init_node, self.spec.parties, ports))
        members: list[FederationMember] = []
        for node in initialised:
            self.nodes[node.party] = node
            members.append(
                FederationMember(
                    party=node.party,
                    registry_id=node.registry_id,
                    public_key_base64=node.public_key_base64,
                    inbox_topic=inbox_topic(node.party),
                )
            )
        directory = FederationDirectory(members=tuple(members))
        self.directory_path.write_text(directory.model_dump_json(indent=2) + "\n")
        for node in self.nodes.values():
            # Appended to the node's own config, so `registry-node serve --env-file`
            # run by hand finds the same directory as the launcher's process.
            self._configure_directory(node, self.directory_path)
        self._write_state()

    def _configure_directory(self, node: NodeClient, directory_path: Path) -> None:
        with node.env_file.open("a") as config:
            config.write(f"{ENV_PREFIX}DIRECTORY_PATH={directory_path}\n")
            if self.spec.authority_keys:
                keys = ",".join(self.spec.authority_keys)
                config.write(f"{ENV_PREFIX}FEDERATION_AUTHORITY_KEYS={keys}\n")

    def init_joining(self, party: PartySpec) -> NodeClient:
        """``registry-node init`` for a Party joining the running federation; not started.

        Its public key (``NodeClient.public_key_base64``) goes to the authority, which
        publishes a directory version listing it; ``start_joining`` then starts it on
        that signed version.
        """
        if party.party in self.nodes:
            raise FederationError(f"{party.party} is in this federation already")
        if self.spec.api_port_base is None:
            (port,) = free_ports(self.spec.api_host, 1)
        else:
            port = self.spec.api_port_base + len(self.nodes)
        node = self._init_node(party, port)
        self.nodes[party.party] = node
        self._write_state()
        return node

    def start_joining(self, party: str, directory_path: Path) -> None:
        """Start a node made by ``init_joining`` on the directory file the authority sent it."""
        self._configure_directory(self.node(party), directory_path)
        self._spawn(party)
        self._wait_healthy(party)

    def _ports(self) -> list[int]:
        count = len(self.spec.parties)
        if self.spec.api_port_base is None:
            return free_ports(self.spec.api_host, count)
        return [self.spec.api_port_base + index for index in range(count)]

    def _init_node(self, party: PartySpec, port: int) -> NodeClient:
        data_dir = self.spec.base_dir / party.party
        database_url = (
            ""
            if self.spec.database == "sqlite"
            else self.spec.database(party.party)  # one database per Party: sovereignty
        )
        command = [
            *self.spec.command(),
            "init",
            "--party",
            party.party,
            "--registry-id",
            party.resolved_registry_id,
            "--data-dir",
            str(data_dir),
            "--kafka-bootstrap-servers",
            self.spec.kafka_bootstrap,
            "--api-host",
            self.spec.api_host,
            "--api-port",
            str(port),
            "--local",
        ]
        if database_url:
            command += ["--database-url", database_url]
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=INIT_TIMEOUT_S,
                env=_node_environment(),
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise FederationError(
                f"registry-node init for {party.party} did not finish in {INIT_TIMEOUT_S:.0f} s"
            ) from error
        if done.returncode != 0:
            raise FederationError(
                f"registry-node init for {party.party} failed (exit {done.returncode}):\n"
                f"{done.stderr.strip() or done.stdout.strip()}"
            )
        public_key = _public_key_from_init_output(done.stdout, party.party)
        env_file = data_dir / CONFIG_FILE_NAME
        config = read_env_file(env_file)
        return NodeClient(
            party=party.party,
            registry_id=party.resolved_registry_id,
            api_url=f"http://{self.spec.api_host}:{port}",
            operator_token=_first_token(config, "OPERATOR_TOKENS", env_file),
            auditor_token=_first_token(config, "AUDITOR_TOKENS", env_file),
            public_key_base64=public_key,
            data_dir=data_dir,
            env_file=env_file,
            database_url=config.get(f"{ENV_PREFIX}DATABASE_URL", ""),
            log_path=data_dir / NODE_LOG_FILE_NAME,
        )

    # -------------------------------------------------------------- start, stop

    def start(self, parties: Collection[str] | None = None) -> None:
        """Spawn every node (or those of ``parties``), then wait until each is healthy.

        A prepared node left out joins later with ``restart``: it is in the
        directory from the start, and its database is still empty when it does.
        """
        if not self.nodes:
            raise FederationError("prepare() the federation before starting it")
        starting = list(self.nodes) if parties is None else [self.node(p).party for p in parties]
        for party in starting:
            self._spawn(party)
        try:
            for party in starting:
                self._wait_healthy(party)
        except BaseException:
            # A half-started federation is worse than none: leave nothing behind.
            self.stop()
            raise

    def _spawn(self, party: str) -> None:
        if party in self._running and self._running[party].process.poll() is None:
            raise FederationError(f"the node of {party} is already running")
        node = self.nodes[party]
        log = node.log_path.open("ab")
        log.write(f"\n===== launcher: starting {party} at {time.ctime()} =====\n".encode())
        log.flush()
        prefix = die_with_us_prefix() if self.spec.die_with_launcher else []
        process = subprocess.Popen(
            [*prefix, *self.spec.command(), "serve", "--env-file", str(node.env_file)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=node.data_dir,
            env=_node_environment(),
            # Its own session and process group: stop() signals the whole group, and
            # Ctrl-C in the terminal reaches the launcher only, which stops nodes cleanly.
            start_new_session=True,
        )
        self._running[party] = _Running(process, log)
        self._write_state()

    def _wait_healthy(self, party: str, timeout_s: float = NODE_START_TIMEOUT_S) -> None:
        node = self.nodes[party]
        running = self._running[party]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            exit_code = running.process.poll()
            if exit_code is not None:
                raise FederationError(
                    f"the node of {party} exited with code {exit_code} before it was healthy; "
                    f"last lines of {node.log_path}:\n{log_tail(node.log_path)}"
                )
            if node.healthy():
                return
            time.sleep(HEALTH_POLL_INTERVAL_S)
        raise FederationError(
            f"the node of {party} did not answer {node.api_url}/v1/health within "
            f"{timeout_s:.0f} s; last lines of {node.log_path}:\n{log_tail(node.log_path)}"
        )

    def node(self, party: str) -> NodeClient:
        try:
            return self.nodes[party]
        except KeyError:
            raise FederationError(f"{party} is not in this federation") from None

    def pid(self, party: str) -> int | None:
        """The pid of the node's process (its process group leader), if it runs."""
        running = self._running.get(party)
        if running is None or running.process.poll() is not None:
            return None
        return running.pid

    def is_running(self, party: str) -> bool:
        return self.pid(party) is not None

    def kill(self, party: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send ``sig`` to the node's whole process group and wait until the node is gone.

        SIGKILL is the crash the protocol must survive: no shutdown hook runs.
        """
        running = self._running.get(party)
        if running is None:
            raise FederationError(f"the node of {party} was not started")
        _signal_group(running.pid, sig)
        try:
            running.process.wait(timeout=NODE_KILL_WAIT_S)
        except subprocess.TimeoutExpired:
            raise FederationError(
                f"the node of {party} (pid {running.pid}) survived {sig.name} for "
                f"{NODE_KILL_WAIT_S:.0f} s"
            ) from None
        self._forget(party)

    def restart(self, party: str) -> None:
        """Stop the node if it still runs, start it on the same data, wait until healthy."""
        if self.is_running(party):
            self._stop_one(party)
        self._spawn(party)
        self._wait_healthy(party)

    def stop(self) -> None:
        """SIGTERM every node's group, SIGKILL what is left after the grace period."""
        # Signal all first: the nodes shut down in parallel, not one grace period each.
        for running in self._running.values():
            if running.process.poll() is None:
                _signal_group(running.pid, signal.SIGTERM)
        problems: list[str] = []
        for party in list(self._running):
            try:
                self._stop_one(party, signalled=True)
            except FederationError as error:
                problems.append(str(error))
        self._write_state()
        if problems:
            raise FederationError("; ".join(problems))

    def _stop_one(self, party: str, *, signalled: bool = False) -> None:
        running = self._running[party]
        pid = running.pid
        if running.process.poll() is None:
            # Never a second SIGTERM: uvicorn takes that as "force exit now".
            if not signalled:
                _signal_group(pid, signal.SIGTERM)
            try:
                running.process.wait(timeout=NODE_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                _signal_group(pid, signal.SIGKILL)
                running.process.wait(timeout=NODE_KILL_WAIT_S)
        # The leader is reaped; anything it forked would still be in its group.
        if group_alive(pid):
            _signal_group(pid, signal.SIGKILL)
            if not _wait_group_gone(pid, NODE_KILL_WAIT_S):
                raise FederationError(f"processes of {party}'s group {pid} survived SIGKILL")
        self._forget(party)

    def _forget(self, party: str) -> None:
        running = self._running.pop(party, None)
        if running is not None:
            running.log.close()
        self._write_state()

    def detach(self) -> None:
        """Leave the nodes running (in their own sessions) when this process exits;
        ``stop_recorded_nodes`` (the CLI's ``down``) finds them through the state file."""
        for running in self._running.values():
            running.log.close()

    # ------------------------------------------------------------- the state file

    def _write_state(self) -> None:
        if not self.spec.base_dir.is_dir():
            return
        state = {
            "directory_path": str(self.directory_path),
            "kafka_bootstrap": self.spec.kafka_bootstrap,
            "nodes": {
                party: {
                    "registry_id": node.registry_id,
                    "api_url": node.api_url,
                    "env_file": str(node.env_file),
                    "log_path": str(node.log_path),
                    "pid": self.pid(party),
                }
                for party, node in self.nodes.items()
            },
        }
        self.state_path.write_text(json.dumps(state, indent=2) + "\n")

    # ------------------------------------------------------------ context manager

    def __enter__(self) -> Self:
        if not self.nodes:
            self.prepare()
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


# ----------------------------------------------------------------------- helpers


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of a config written by ``registry-node init``; later lines win."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and "=" in stripped:
            name, value = stripped.split("=", 1)
            values[name.strip()] = value.strip()
    return values


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process is left in the process group ``pgid``.

    Zombies count as gone: a node whose launcher exited is reparented, and its
    exit status may sit unreaped for a while without the node doing anything.
    """
    proc = Path("/proc")
    if not proc.is_dir():  # no procfs (macOS): ask the kernel, zombies included
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for stat_path in proc.glob("[0-9]*/stat"):
        try:
            stat = stat_path.read_text()
        except OSError:
            continue  # exited while we looked
        # Fields after the parenthesised command name: state, ppid, pgrp, ...
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state not in ("Z", "X"):
            return True
    return False


def _wait_group_gone(pgid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not group_alive(pgid):
            return True
        time.sleep(HEALTH_POLL_INTERVAL_S)
    return not group_alive(pgid)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _node_environment() -> dict[str, str]:
    """Our environment without REGISTRY_*: a node's config is its env file, nothing else."""
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith(ENV_PREFIX)
    }
    environment["PYTHONUNBUFFERED"] = "1"  # node.log shows lines as they happen
    return environment


def _public_key_from_init_output(stdout: str, party: str) -> str:
    for line in reversed(stdout.splitlines()):
        if line.startswith(PUBLIC_KEY_PREFIX):
            return line.removeprefix(PUBLIC_KEY_PREFIX).strip()
    raise FederationError(f"registry-node init for {party} printed no {PUBLIC_KEY_PREFIX} line")


def _first_token(config: Mapping[str, str], name: str, env_file: Path) -> str:
    tokens = [token for token in config.get(f"{ENV_PREFIX}{name}", "").split(",") if token]
    if not tokens:
        raise FederationError(f"{env_file} has no {ENV_PREFIX}{name}")
    return tokens[0]


def free_ports(host: str, count: int) -> list[int]:
    """``count`` distinct ports, below the kernel's ephemeral range, that bind now.

    Not port 0: the kernel picks those from the ephemeral range (32768-60999 on
    Linux), the same range it draws outgoing connections' local ports from, so a
    client reconnecting to a restarting broker can take the port a node was about
    to listen on. A small race with other processes remains, as with any probe.
    """
    rng = random.SystemRandom()
    candidates = rng.sample(range(*FREE_PORT_RANGE), FREE_PORT_PROBES_MAX)
    sockets: list[socket.socket] = []
    try:
        for port in candidates:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind((host, port))
            except OSError:
                sock.close()
                continue
            sockets.append(sock)
            if len(sockets) == count:
                return [held.getsockname()[1] for held in sockets]
        raise FederationError(
            f"found only {len(sockets)} of {count} free ports on {host} in "
            f"{FREE_PORT_PROBES_MAX} probes of {FREE_PORT_RANGE[0]}-{FREE_PORT_RANGE[1] - 1}"
        )
    finally:
        for sock in sockets:
            sock.close()


def die_with_us_prefix() -> list[str]:
    """Put before a command so that the process dies when this one exits (Linux; see
    die_with_parent.py). Spawn from the main thread: the kernel watches the forking thread."""
    return [sys.executable, str(HERE / "die_with_parent.py"), str(os.getpid()), "--"]


def _replace_base(spec: FederationSpec, base: Path) -> FederationSpec:
    return dataclasses.replace(spec, base_dir=base)


def _wipe_own_base_dir(base: Path) -> None:
    if not base.exists():
        return
    if not base.is_dir() or (any(base.iterdir()) and not (base / STATE_FILE_NAME).exists()):
        raise FederationError(
            f"{base} exists and was not made by this launcher (no {STATE_FILE_NAME}); "
            "choose another --base-dir or remove it yourself"
        )
    stop_recorded_nodes(base)
    shutil.rmtree(base)


def _recorded_nodes(base: Path) -> dict[str, dict[str, Any]]:
    state_path = base / STATE_FILE_NAME
    if not state_path.is_file():
        return {}
    nodes: dict[str, dict[str, Any]] = json.loads(state_path.read_text()).get("nodes", {})
    return nodes


def _is_our_node(pid: int, env_file: str) -> bool:
    """Guard against a recycled pid: the process must be `serve` of that env file."""
    try:
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return group_alive(pid)  # no /proc (macOS): trust the group we created
    return env_file.encode() in command_line and b"serve" in command_line


def stop_recorded_nodes(base: Path) -> list[str]:
    """Stop the nodes a launcher recorded in ``base`` (``down``, or a stale earlier run)."""
    ours = {
        party: pid
        for party, record in _recorded_nodes(base).items()
        if isinstance(pid := record.get("pid"), int)
        and _is_our_node(pid, str(record.get("env_file")))
    }
    for pid in ours.values():
        _signal_group(pid, signal.SIGTERM)
    for party, pid in ours.items():
        if not _wait_group_gone(pid, NODE_STOP_TIMEOUT_S):
            _signal_group(pid, signal.SIGKILL)
            if not _wait_group_gone(pid, NODE_KILL_WAIT_S):
                raise FederationError(f"the node of {party} (pid {pid}) survived SIGKILL")
    stopped = list(ours)
    state_path = base / STATE_FILE_NAME
    if state_path.is_file():
        state = json.loads(state_path.read_text())
        for record in state.get("nodes", {}).values():
            record["pid"] = None
        state_path.write_text(json.dumps(state, indent=2) + "\n")
    return stopped


def parse_parties(text: str) -> list[PartySpec]:
    return [PartySpec(code.strip().upper()) for code in text.split(",") if code.strip()]


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A local federation of registry nodes.")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="init (fresh) and start one node per Party, detached")
    up.add_argument("--parties", default="CHE,GHA,THA", help="comma-separated Party codes")
    up.add_argument("--base-dir", type=Path, default=DEFAULT_BASE_DIR)
    up.add_argument("--kafka-bootstrap", default=DEFAULT_KAFKA_BOOTSTRAP)
    up.add_argument("--api-port-base", type=int, default=DEFAULT_API_PORT_BASE)
    down = commands.add_parser("down", help="stop the nodes started by `up` from --base-dir")
    down.add_argument("--base-dir", type=Path, default=DEFAULT_BASE_DIR)
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            federation = Federation(
                FederationSpec(
                    parties=parse_parties(args.parties),
                    base_dir=args.base_dir,
                    kafka_bootstrap=args.kafka_bootstrap,
                    api_port_base=args.api_port_base,
                )
            )
            federation.prepare()
            federation.start()
            for node in federation.nodes.values():
                print(
                    f"{node.party} {node.api_url} pid={federation.pid(node.party)} "
                    f"operator_token={node.operator_token} log={node.log_path}"
                )
            print(f"directory: {federation.directory_path}")
            print(f"stop with: {Path(__file__).name} down --base-dir {args.base_dir}")
            federation.detach()
            return 0
        stopped = stop_recorded_nodes(args.base_dir.resolve())
        print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
        return 0
    except FederationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
