"""``make demo`` stops everything it started, however it is stopped.

Each test runs the real ``make demo`` in its own session (so ``make`` leads a
process group, as under a supervisor or a shell's job control), on its own
broker port and API ports below the ephemeral range, never 9092 or 19092, and
waits until the demo has started its broker and its three nodes. It then stops
the demo one way and scans /proc until no process of that demo is left: not
``make``, not the demo, not a node, not the broker.

- SIGTERM to the whole process group (``kill -TERM -- -PGID``), and again once
  the demo is stopping: a supervisor that repeats itself, or ``make`` passing its
  own copy on late, must not cut the cleanup short.
- SIGTERM to the demo twice, the second while the first is cleaning up.
- SIGKILL to ``make`` alone: the demo must notice its parent is gone.
- SIGKILL to the demo: no cleanup runs, so the nodes and the broker must notice
  their parent is gone.

The second signal is sent once the demo has printed "Stopping.", that is while
it stops its nodes, before it stops the broker.

The slow secure variant runs ``make demo DEMO_ARGS="--secure --brokers 3"``: the
story must end as the plain one does, on three TLS brokers with ACLs, each node its
own principal, the PKI's keys readable by their owner only; then SIGTERM to the
process group, twice, leaves nothing running. Its brokers sit on
``KAFKA_SECURE_DEMO_PORT`` (and +2, +4, controllers one above each) if set, else on a
free run of six ports.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from deploy.federation.launcher import free_ports

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_PARTIES = ("CHE", "GHA", "THA")
# From `make demo` to three healthy nodes: a broker start (the JVM, a few seconds),
# three `registry-node init` and three node starts on a loaded two-core machine.
DEMO_START_TIMEOUT_S = 300.0
# From the stopping signal to no process left: the nodes' graceful stop
# (launcher NODE_STOP_TIMEOUT_S) plus the broker's (deploy/kafka BROKER_STOP_TIMEOUT_S).
DEMO_STOP_TIMEOUT_S = 120.0
POLL_INTERVAL_S = 0.5
# A consecutive free run of ports: the broker and its KRaft controller, or the nodes' APIs.
PORT_RUN_PROBES_MAX = 50
# How often the output is read while waiting for the demo to say it is stopping:
# often, so that the second signal lands while the nodes are still stopping.
STOPPING_POLL_INTERVAL_S = 0.02
STOPPING_LINE = "Stopping."


def _free_run(length: int) -> int:
    """The first of ``length`` consecutive free ports below the ephemeral range."""
    for _ in range(PORT_RUN_PROBES_MAX):
        first = free_ports("127.0.0.1", 1)[0]
        probes: list[socket.socket] = []
        try:
            for port in range(first, first + length):
                probe = socket.socket()
                probes.append(probe)
                probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
        return first
    raise AssertionError(f"no run of {length} free ports")


def _live_processes_mentioning(markers: tuple[str, ...]) -> dict[int, str]:
    """pid -> command line of every live (not zombie) process whose command line
    contains one of ``markers``. Read from /proc, so it needs no psutil."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command_line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # gone while we looked
        if state not in ("Z", "X") and any(marker in command_line for marker in markers):
            found[int(entry.name)] = command_line
    return found


@dataclass
class RunningDemo:
    make: subprocess.Popen[bytes]
    output_path: Path
    base_dir: Path
    kafka_port: int

    @property
    def markers(self) -> tuple[str, ...]:
        # The nodes run `serve --env-file <base_dir>/<PARTY>/registry.env`, the demo has
        # --base-dir on its command line, and the broker's config sits in var/kafka-<port>.
        return (str(self.base_dir), f"kafka-{self.kafka_port}")

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def demo_pid(self) -> int:
        for pid, command_line in _live_processes_mentioning(self.markers).items():
            if "demo.py" in command_line and pid != self.make.pid:
                return pid
        raise AssertionError(f"no demo process; output:\n{self.output()}")

    def processes(self) -> dict[int, str]:
        return _live_processes_mentioning(self.markers)

    def wait_until_gone(self) -> dict[int, str]:
        deadline = time.monotonic() + DEMO_STOP_TIMEOUT_S
        while (left := self.processes()) and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL_S)
        return left


def _start_demo(
    tmp_path: Path,
    extra_args: str = "",
    *,
    kafka_port: int | None = None,
    brokers: int = 1,
    ready_line: str = " THA node ",
    start_timeout_s: float = DEMO_START_TIMEOUT_S,
) -> RunningDemo:
    if kafka_port is None:
        kafka_port = _free_run(2 * brokers)  # each broker: client and controller ports
    api_port_base = _free_run(len(DEMO_PARTIES))
    base_dir = tmp_path / "demo"
    output_path = tmp_path / "demo.out"
    demo_args = (
        f"--base-dir {base_dir} --kafka-port {kafka_port} --api-port-base {api_port_base}"
        f" {extra_args}"
    ).strip()
    with output_path.open("wb") as output:
        make = subprocess.Popen(
            ["make", "--no-print-directory", "demo", f"DEMO_ARGS={demo_args}"],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            # make leads a new process group, as under a supervisor.
            start_new_session=True,
        )
    demo = RunningDemo(make, output_path, base_dir, kafka_port)
    deadline = time.monotonic() + start_timeout_s
    # The demo prints one line per node once all are healthy; the last is THA's.
    while ready_line not in demo.output():
        if make.poll() is not None or time.monotonic() > deadline:
            _kill_everything(demo)
            pytest.fail(f"the demo did not get to {ready_line!r}; output:\n{demo.output()}")
        time.sleep(POLL_INTERVAL_S)
    started = demo.processes()
    nodes = [line for line in started.values() if "serve" in line and "--env-file" in line]
    running_brokers = [line for line in started.values() if "kafka.Kafka" in line]
    assert len(nodes) == len(DEMO_PARTIES), started
    assert len(running_brokers) == brokers, started
    return demo


def _kill_everything(demo: RunningDemo) -> None:
    """Last resort for a failed test: no orphan outlives it, whatever the demo did."""
    for pid in demo.processes():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    demo.make.wait()
    # The broker's data directory (deploy/kafka's default for its port) is this test's own.
    shutil.rmtree(REPO_ROOT / "var" / f"kafka-{demo.kafka_port}", ignore_errors=True)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[RunningDemo]:
    running = _start_demo(tmp_path)
    try:
        yield running
    finally:
        _kill_everything(running)


def _assert_nothing_left(demo: RunningDemo) -> None:
    left = demo.wait_until_gone()
    assert left == {}, (
        f"processes left behind: {left}\n--- demo output ---\n{demo.output()[-4000:]}"
    )


Stop = Callable[[RunningDemo], None]


def _wait_until_stopping(demo: RunningDemo) -> None:
    deadline = time.monotonic() + DEMO_STOP_TIMEOUT_S
    while STOPPING_LINE not in demo.output():
        if time.monotonic() > deadline:
            raise AssertionError(f"the demo never said {STOPPING_LINE!r}:\n{demo.output()}")
        time.sleep(STOPPING_POLL_INTERVAL_S)


def _sigterm_the_process_group_twice(demo: RunningDemo) -> None:
    os.killpg(demo.make.pid, signal.SIGTERM)
    _wait_until_stopping(demo)
    os.killpg(demo.make.pid, signal.SIGTERM)


def _sigterm_the_demo_twice(demo: RunningDemo) -> None:
    pid = demo.demo_pid()
    os.kill(pid, signal.SIGTERM)
    _wait_until_stopping(demo)
    os.kill(pid, signal.SIGTERM)


def _sigkill_make(demo: RunningDemo) -> None:
    os.kill(demo.make.pid, signal.SIGKILL)


def _sigkill_the_demo(demo: RunningDemo) -> None:
    os.kill(demo.demo_pid(), signal.SIGKILL)


@pytest.mark.parametrize(
    "stop",
    [
        _sigterm_the_process_group_twice,
        _sigterm_the_demo_twice,
        _sigkill_make,
        _sigkill_the_demo,
    ],
    ids=lambda stop: stop.__name__.strip("_"),
)
def test_stopping_the_demo_leaves_no_process(demo: RunningDemo, stop: Stop) -> None:
    stop(demo)
    demo.make.wait()
    _assert_nothing_left(demo)


# --------------------------------------------------------------------- the secure demo

SECURE_BROKERS = 3
# What the demo prints once the story is told and the federation keeps running.
KEEPS_RUNNING_LINE = "The federation keeps running"
STORY_FAILED_LINE = "did not end as expected"
STORY_STEPS = 6  # with three Parties: see run_story in deploy/federation/demo.py
# Three broker JVMs, three nodes and the whole story (about 80 s when the machine is idle).
SECURE_DEMO_STORY_TIMEOUT_S = 600.0
# That, plus the stop: above pytest's default per-test timeout (pyproject.toml).
SECURE_DEMO_TEST_TIMEOUT_S = 900
OWNER_ONLY_MODE = 0o600


@pytest.fixture
def secure_demo(tmp_path: Path) -> Iterator[RunningDemo]:
    given = os.environ.get("KAFKA_SECURE_DEMO_PORT", "").strip()
    running = _start_demo(
        tmp_path,
        f"--secure --brokers {SECURE_BROKERS}",
        kafka_port=int(given) if given else None,
        brokers=SECURE_BROKERS,
        ready_line=KEEPS_RUNNING_LINE,
        start_timeout_s=SECURE_DEMO_STORY_TIMEOUT_S,
    )
    try:
        yield running
    finally:
        _kill_everything(running)


@pytest.mark.slow
@pytest.mark.timeout(SECURE_DEMO_TEST_TIMEOUT_S)
def test_the_secure_demo_tells_the_story_on_a_tls_cluster_and_stops(
    secure_demo: RunningDemo,
) -> None:
    output = secure_demo.output()
    assert STORY_FAILED_LINE not in output, output
    assert "✘" not in output, output
    steps = re.findall(r"✔ (\d+)\. ", output)
    assert steps == [str(number) for number in range(1, STORY_STEPS + 1)], output
    for party in DEMO_PARTIES:
        assert f"as User:party.{party}" in output, output
    assert "ACLs written from the directory by User:federation-admin" in output, output

    base = secure_demo.base_dir
    keys = sorted((base / "kafka-pki").rglob("*.key")) + sorted((base / "kafka-pki").rglob("*.pem"))
    # The CA, three brokers (key and keystore), the admin, three Parties.
    assert len(keys) == 1 + 2 * SECURE_BROKERS + 1 + len(DEMO_PARTIES), keys
    assert {path: path.stat().st_mode & 0o777 for path in keys} == {
        path: OWNER_ONLY_MODE for path in keys
    }
    for party in DEMO_PARTIES:
        config = (base / party / "registry.env").read_text()
        assert "REGISTRY_KAFKA_SECURITY_PROTOCOL=SSL" in config
        assert f"REGISTRY_KAFKA_SSL_KEY_PATH={base / 'kafka-pki' / 'parties' / party}" in config
    broker_configs = sorted(base.glob("kafka-*/server.properties"))
    assert len(broker_configs) == SECURE_BROKERS, broker_configs
    for properties in broker_configs:
        settings = properties.read_text()
        assert "ssl.client.auth=required" in settings
        assert "allow.everyone.if.no.acl.found=false" in settings
        assert "PLAINTEXT" not in settings

    _sigterm_the_process_group_twice(secure_demo)
    secure_demo.make.wait()
    _assert_nothing_left(secure_demo)
