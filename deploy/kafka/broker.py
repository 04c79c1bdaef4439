#!/usr/bin/env python3
"""A local single-node Apache Kafka broker for development and tests, without Docker.

    python deploy/kafka/broker.py start  [--port 9092] [--data-dir DIR]
    python deploy/kafka/broker.py stop   [--port 9092] [--data-dir DIR]
    python deploy/kafka/broker.py status [--port 9092] [--data-dir DIR]
    python deploy/kafka/broker.py run    [--port 9092] [--data-dir DIR]   (foreground)

One JVM runs Kafka 4.1 in KRaft mode as combined broker and controller, bound to 127.0.0.1
only. The jars come from Maven Central through deploy/kafka/pom.xml into a cache outside
git (``$XDG_CACHE_HOME/a6-registry/kafka-4.1.1/lib``), so the machine needs a JDK 17+ and
Maven, nothing else. Each port has its own data directory (default ``<repo>/var/kafka-PORT``)
holding server.properties, the KRaft cluster id, the log directories, broker.log and
broker.pid.

``start`` is idempotent: it reuses the jar cache, the formatted storage and a broker that
already answers on the port. It returns only once the broker answers a Kafka Metadata
request listing itself, which Kafka does only after the broker has joined the KRaft quorum
and been unfenced; an open TCP port is not enough. Standard library only, so it runs
before the project's virtualenv exists. Importable: ``start_broker``, ``stop_broker``,
``broker_is_up``, ``kafka_answers``, ``wait_for_kafka``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NoReturn

KAFKA_VERSION = "4.1.1"
DEFAULT_PORT = 9092
LOCALHOST = "127.0.0.1"
# The KRaft controller listens next to the client port, so one --port names both.
CONTROLLER_PORT_OFFSET = 1
NODE_ID = 1

# A cold JVM on a 2-core machine needs about 10 s to format nothing and come up; 120 s
# leaves room for a loaded CI runner without hiding a broker that will never start.
BROKER_START_TIMEOUT_S = 120.0
# Kafka's shutdown hook closes the log and the controller; past this we SIGKILL.
BROKER_STOP_TIMEOUT_S = 30.0
# The first resolution downloads about 45 MB from Maven Central.
MAVEN_RESOLVE_TIMEOUT_S = 900.0
STORAGE_FORMAT_TIMEOUT_S = 120.0
# Another process holding the lock may be resolving jars and then starting a broker.
LOCK_WAIT_TIMEOUT_S = MAVEN_RESOLVE_TIMEOUT_S + BROKER_START_TIMEOUT_S
# One connect-send-receive of the readiness probe.
PROBE_TIMEOUT_S = 2.0
POLL_INTERVAL_S = 0.25
# Enough for a dev broker with a few hundred test topics, small enough for CI runners.
JVM_HEAP_MIN_MB = 256
JVM_HEAP_MAX_MB = 512
LOG_TAIL_LINES = 40

# Kafka wire protocol of the readiness probe: Metadata (api key 3) v4, the oldest version
# Kafka 4 still serves (KIP-896) and one every broker since Kafka 1.0 understands.
METADATA_API_KEY = 3
METADATA_API_VERSION = 4
PROBE_CLIENT_ID = b"a6-registry-readiness-probe"

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
POM_PATH = HERE / "pom.xml"
LOG4J2_CONFIG_PATH = HERE / "log4j2.properties"

SERVER_PROPERTIES = "server.properties"
CLUSTER_ID_FILE = "cluster.id"
KAFKA_LOG_DIRS = "kraft-logs"
BROKER_LOG = "broker.log"
PID_FILE = "broker.pid"
LOCK_FILE = ".lock"
JARS_COMPLETE_MARKER = ".complete"


class BrokerError(RuntimeError):
    """The broker could not be provisioned, started or stopped; the message says why."""


def bootstrap_address(port: int) -> str:
    return f"{LOCALHOST}:{port}"


def controller_port(port: int) -> int:
    return port + CONTROLLER_PORT_OFFSET


def default_data_dir(port: int) -> Path:
    return REPO_ROOT / "var" / f"kafka-{port}"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "a6-registry" / f"kafka-{KAFKA_VERSION}"


def lib_dir() -> Path:
    return cache_dir() / "lib"


# ----------------------------------------------------------------------------- probing


def _parse_bootstrap(bootstrap: str) -> list[tuple[str, int]]:
    """``host:port[,host:port...]``, with or without a ``PLAINTEXT://`` style prefix."""
    servers: list[tuple[str, int]] = []
    for item in bootstrap.split(","):
        item = item.strip()
        if not item:
            continue
        if "://" in item:
            item = item.split("://", 1)[1]
        host, sep, port_text = item.rpartition(":")
        if not sep or not port_text.isdigit():
            raise ValueError(f"not a host:port bootstrap server: {item!r}")
        servers.append((host.strip("[]") or LOCALHOST, int(port_text)))
    if not servers:
        raise ValueError(f"no bootstrap server in {bootstrap!r}")
    return servers


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = sock.recv(remaining)
        if not chunk:
            raise ConnectionError("connection closed mid-response")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _metadata_broker_count(host: str, port: int, timeout_s: float) -> int | None:
    """How many live brokers a Kafka Metadata response lists, or None when nothing answers.

    A KRaft broker lists only unfenced brokers, so a positive count means it has caught up
    with the metadata log and will serve produce, fetch and group requests.
    """
    correlation_id = int.from_bytes(os.urandom(4), "big") & 0x7FFFFFFF
    header = struct.pack(
        ">hhih", METADATA_API_KEY, METADATA_API_VERSION, correlation_id, len(PROBE_CLIENT_ID)
    )
    # topics = null (all topics), allow_auto_topic_creation = false
    body = struct.pack(">i?", -1, False)
    request = header + PROBE_CLIENT_ID + body
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.settimeout(timeout_s)
            sock.sendall(struct.pack(">i", len(request)) + request)
            (size,) = struct.unpack(">i", _recv_exactly(sock, 4))
            if size < 12:
                return None
            # correlation id, throttle time, broker array length: the rest is not needed.
            answered_id, _throttle_ms, broker_count = struct.unpack(">iii", _recv_exactly(sock, 12))
    except (OSError, struct.error):
        return None
    if answered_id != correlation_id:
        return None
    return int(broker_count)


def kafka_answers(bootstrap: str, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """True when some server of ``bootstrap`` answers a Metadata request listing a broker."""
    for host, port in _parse_bootstrap(bootstrap):
        count = _metadata_broker_count(host, port, timeout_s)
        if count is not None and count > 0:
            return True
    return False


def wait_for_kafka(bootstrap: str, timeout_s: float) -> bool:
    """Poll :func:`kafka_answers` until it is true or ``timeout_s`` has passed."""
    deadline = time.monotonic() + timeout_s
    while True:
        remaining_s = deadline - time.monotonic()
        if kafka_answers(bootstrap, timeout_s=max(0.1, min(PROBE_TIMEOUT_S, remaining_s))):
            return True
        if time.monotonic() + POLL_INTERVAL_S >= deadline:
            return False
        time.sleep(POLL_INTERVAL_S)


def broker_is_up(port: int = DEFAULT_PORT) -> bool:
    """True when a Kafka broker on 127.0.0.1:``port`` is ready to serve clients."""
    return kafka_answers(bootstrap_address(port))


def _port_accepts(port: int) -> bool:
    try:
        with socket.create_connection((LOCALHOST, port), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


# ------------------------------------------------------------------ processes and files


@contextlib.contextmanager
def _locked(path: Path, timeout_s: float = LOCK_WAIT_TIMEOUT_S) -> Iterator[None]:
    """An exclusive advisory lock, so parallel test sessions do not start two brokers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise BrokerError(
                        f"{path} stayed locked for {timeout_s:.0f} s by another broker.py"
                    ) from exc
                time.sleep(POLL_INTERVAL_S)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _process_running(pid: int) -> bool:
    # Reap it first if it is our own exited child, or it lingers as a zombie.
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    state = fields.get("State", "").split()[:1]
    threads = int(fields.get("Threads", "1").strip() or "1")
    # A JVM's main thread exits when SIGTERM ends kafka.Kafka's wait, and then shows as a
    # zombie while the shutdown hook still runs in other threads: only a zombie without
    # threads is really gone (one whose parent will never reap it).
    return not (state and state[0] in ("Z", "X") and threads <= 1)


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _is_our_broker(pid: int, config_path: Path) -> bool:
    """The process is the kafka.Kafka JVM started with this very server.properties."""
    args = _cmdline(pid)
    return "kafka.Kafka" in args and str(config_path) in args


def _find_broker_pid(data_dir: Path) -> int | None:
    config_path = data_dir / SERVER_PROPERTIES
    pid_path = data_dir / PID_FILE
    with contextlib.suppress(OSError, ValueError):
        pid = int(pid_path.read_text().strip())
        if _process_running(pid) and _is_our_broker(pid, config_path):
            return pid
    # The pid file may be gone (a wiped var/ while the JVM kept running): look for the JVM
    # that was started with this data directory's config, and nothing else.
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _is_our_broker(int(entry.name), config_path):
            return int(entry.name)
    return None


def _log_tail(data_dir: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = (data_dir / BROKER_LOG).read_text(errors="replace")
    except OSError:
        return "(no broker log)"
    return "\n".join(text.splitlines()[-lines:])


def _info(message: str) -> None:
    print(f"[kafka] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- provision


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise BrokerError(
            "java not found on PATH (and JAVA_HOME is not set): Kafka 4.1 needs a JDK or "
            "JRE 17+, e.g. `apt-get install -y openjdk-17-jre-headless`."
        )
    return java


def _pom_digest() -> str:
    return hashlib.sha256(POM_PATH.read_bytes()).hexdigest()


def ensure_jars() -> Path:
    """The directory of Kafka's jars, resolved from Maven Central on first use.

    Maven copies into a scratch directory that is renamed into place only when complete,
    and a marker records which pom.xml produced it, so an interrupted download or an
    edited pom is resolved again rather than half used.
    """
    target = lib_dir()
    marker = target / JARS_COMPLETE_MARKER
    digest = _pom_digest()
    with _locked(cache_dir() / LOCK_FILE):
        if marker.is_file() and marker.read_text().strip() == digest:
            return target
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError(
                f"mvn not found on PATH: the Kafka {KAFKA_VERSION} jars are resolved from "
                "Maven Central with Maven 3.8+, e.g. `apt-get install -y maven`."
            )
        scratch = cache_dir() / f"lib.partial-{os.getpid()}"
        shutil.rmtree(scratch, ignore_errors=True)
        _info(f"resolving Kafka {KAFKA_VERSION} jars from Maven Central into {target}")
        command = [
            mvn,
            "-B",
            "-q",
            "-Dstyle.color=never",
            "-f",
            str(POM_PATH),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={scratch}",
        ]
        try:
            result = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=MAVEN_RESOLVE_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            shutil.rmtree(scratch, ignore_errors=True)
            raise BrokerError(
                f"Maven did not resolve the Kafka jars within {MAVEN_RESOLVE_TIMEOUT_S:.0f} s"
            ) from exc
        if result.returncode != 0 or not any(scratch.glob("kafka_2.13-*.jar")):
            shutil.rmtree(scratch, ignore_errors=True)
            output = (result.stdout + result.stderr).strip().splitlines()[-LOG_TAIL_LINES:]
            raise BrokerError(
                "Maven could not resolve the Kafka jars (exit code "
                f"{result.returncode}):\n  {' '.join(command)}\n" + "\n".join(output)
            )
        (scratch / JARS_COMPLETE_MARKER).write_text(digest + "\n")
        shutil.rmtree(target, ignore_errors=True)
        scratch.rename(target)
        return target


def _new_cluster_id() -> str:
    # Kafka's Uuid text form: URL-safe base64 of 16 random bytes, without padding. Kafka
    # itself never hands out ids starting with "-", which command lines read as options.
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _cluster_id(data_dir: Path) -> str:
    """The KRaft cluster id of this data directory, created once and then kept."""
    id_path = data_dir / CLUSTER_ID_FILE
    with contextlib.suppress(OSError):
        existing = id_path.read_text().strip()
        if existing:
            return existing
    cluster_id = None
    # Formatted storage wins over a lost cluster.id file: the id is written into it.
    with contextlib.suppress(OSError):
        for line in (data_dir / KAFKA_LOG_DIRS / "meta.properties").read_text().splitlines():
            if line.startswith("cluster.id="):
                cluster_id = line.partition("=")[2].strip()
    cluster_id = cluster_id or _new_cluster_id()
    id_path.write_text(cluster_id + "\n")
    return cluster_id


def _server_properties(port: int, data_dir: Path) -> str:
    cport = controller_port(port)
    settings = {
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        # Kafka 4 dynamic quorum: the controller finds the quorum through this bootstrap
        # list; controller.quorum.voters is the static alternative and must not be set too.
        "controller.quorum.bootstrap.servers": f"{LOCALHOST}:{cport}",
        "listeners": f"PLAINTEXT://{LOCALHOST}:{port},CONTROLLER://{LOCALHOST}:{cport}",
        "advertised.listeners": f"PLAINTEXT://{LOCALHOST}:{port},CONTROLLER://{LOCALHOST}:{cport}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(data_dir / KAFKA_LOG_DIRS),
        # A single broker cannot hold more than one replica of anything.
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "min.insync.replicas": "1",
        "num.partitions": "1",
        # Creating the 50 default partitions of __consumer_offsets delays the first group
        # join by seconds; one partition is plenty on a development machine.
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.num.partitions": "1",
        # A consumer group forms at once instead of waiting 3 s for more members.
        "group.initial.rebalance.delay.ms": "0",
        # As in production, topics exist because someone declared them (FastStream
        # subscribers and the federation's provisioning do), never because a producer
        # mistyped a name.
        "auto.create.topics.enable": "false",
        "delete.topic.enable": "true",
        # Few threads: this broker serves one developer or one CI job on a small machine.
        "num.network.threads": "2",
        "num.io.threads": "4",
        "background.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
    }
    lines = [
        "# Written by deploy/kafka/broker.py on every start; edit the script, not this file.",
        *(f"{key}={value}" for key, value in settings.items()),
    ]
    return "\n".join(lines) + "\n"


def _jvm_command(java: str, jars: Path, data_dir: Path, *main: str) -> list[str]:
    return [
        java,
        f"-Xms{JVM_HEAP_MIN_MB}m",
        f"-Xmx{JVM_HEAP_MAX_MB}m",
        # Kafka's own defaults from kafka-server-start.sh / kafka-run-class.sh.
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:InitiatingHeapOccupancyPercent=35",
        "-XX:+ExplicitGCInvokesConcurrent",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={LOG4J2_CONFIG_PATH}",
        f"-Dkafka.logs.dir={data_dir}",
        "-cp",
        # The JVM expands the wildcard itself: no shell involved.
        str(jars / "*"),
        *main,
    ]


def _format_storage(java: str, jars: Path, data_dir: Path, config_path: Path) -> None:
    if (data_dir / KAFKA_LOG_DIRS / "meta.properties").is_file():
        return
    cluster_id = _cluster_id(data_dir)
    command = _jvm_command(
        java,
        jars,
        data_dir,
        "kafka.tools.StorageTool",
        "format",
        "--standalone",
        "-t",
        cluster_id,
        "-c",
        str(config_path),
    )
    _info(f"formatting KRaft storage in {data_dir / KAFKA_LOG_DIRS} (cluster id {cluster_id})")
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=STORAGE_FORMAT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BrokerError(
            f"kafka.tools.StorageTool did not finish within {STORAGE_FORMAT_TIMEOUT_S:.0f} s"
        ) from exc
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()[-LOG_TAIL_LINES:]
        raise BrokerError(
            f"formatting the KRaft storage failed (exit code {result.returncode}):\n"
            + "\n".join(output)
        )


def _terminate(pid: int, timeout_s: float = BROKER_STOP_TIMEOUT_S) -> None:
    """SIGTERM, so Kafka's shutdown hook closes the logs cleanly; SIGKILL if it hangs."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _process_running(pid):
        if time.monotonic() >= deadline:
            _info(f"broker pid {pid} ignored SIGTERM for {timeout_s:.0f} s: sending SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while _process_running(pid):
                time.sleep(POLL_INTERVAL_S)
            return
        time.sleep(POLL_INTERVAL_S)


def _wait_until_ready(pid: int, port: int, data_dir: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not broker_is_up(port):
        if not _process_running(pid):
            raise BrokerError(
                f"the Kafka broker (pid {pid}) exited during start-up; "
                f"last lines of {data_dir / BROKER_LOG}:\n{_log_tail(data_dir)}"
            )
        if time.monotonic() >= deadline:
            tail = _log_tail(data_dir)
            # A half-started JVM would hold the ports and confuse the next start.
            _terminate(pid)
            raise BrokerError(
                f"the Kafka broker (pid {pid}) did not answer on {bootstrap_address(port)} "
                f"within {timeout_s:.0f} s and was stopped; last lines of "
                f"{data_dir / BROKER_LOG}:\n{tail}"
            )
        time.sleep(POLL_INTERVAL_S)


# --------------------------------------------------------------------------- public API


def start_broker(
    port: int = DEFAULT_PORT,
    data_dir: Path | str | None = None,
    timeout_s: float = BROKER_START_TIMEOUT_S,
    command_prefix: Sequence[str] = (),
) -> str:
    """Start (or reuse) the broker on 127.0.0.1:``port``; return its bootstrap address.

    ``command_prefix`` goes before the JVM's command line (it must ``exec`` the rest):
    the demo passes one that makes the broker die with it.
    """
    bootstrap = bootstrap_address(port)
    data = Path(data_dir).resolve() if data_dir is not None else default_data_dir(port)
    data.mkdir(parents=True, exist_ok=True)
    with _locked(data / LOCK_FILE):
        if broker_is_up(port):
            return bootstrap
        pid = _find_broker_pid(data)
        if pid is not None:
            # A JVM of ours is still coming up (an earlier start was interrupted).
            _info(f"waiting for the already running broker (pid {pid})")
            _wait_until_ready(pid, port, data, timeout_s)
            return bootstrap
        for busy_port in (port, controller_port(port)):
            if _port_accepts(busy_port):
                raise BrokerError(
                    f"{LOCALHOST}:{busy_port} is taken by something that is not a ready "
                    f"Kafka broker started from {data}; choose another --port"
                )
        java = _java()
        jars = ensure_jars()
        config_path = data / SERVER_PROPERTIES
        config_path.write_text(_server_properties(port, data))
        _cluster_id(data)
        _format_storage(java, jars, data, config_path)

        log_path = data / BROKER_LOG
        if log_path.exists():
            log_path.replace(data / f"{BROKER_LOG}.1")
        command = [
            *command_prefix,
            *_jvm_command(java, jars, data, "kafka.Kafka", str(config_path)),
        ]
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=data,
                # Its own session: Ctrl-C in the starting shell or the end of a pytest run
                # does not take the broker down with it; stop_broker does.
                start_new_session=True,
            )
        (data / PID_FILE).write_text(f"{process.pid}\n")
        _info(f"started Kafka {KAFKA_VERSION} (pid {process.pid}), log in {log_path}")
        _wait_until_ready(process.pid, port, data, timeout_s)
        return bootstrap


def stop_broker(port: int = DEFAULT_PORT, data_dir: Path | str | None = None) -> bool:
    """Stop the broker started from this port's data directory; False if none was running."""
    data = Path(data_dir).resolve() if data_dir is not None else default_data_dir(port)
    if not data.is_dir():
        return False
    with _locked(data / LOCK_FILE):
        pid = _find_broker_pid(data)
        if pid is None:
            (data / PID_FILE).unlink(missing_ok=True)
            return False
        _terminate(pid)
        (data / PID_FILE).unlink(missing_ok=True)
        return True


def run_broker_in_foreground(port: int, data_dir: Path | str) -> NoReturn:
    """Write the config, format the storage if new, then become the broker JVM (exec).

    For a container's main process: the same jars, settings and storage layout as
    :func:`start_broker`, but the JVM replaces this process, so it receives the
    container's signals and its output goes to the container's log.
    """
    data = Path(data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    java = _java()
    jars = ensure_jars()
    config_path = data / SERVER_PROPERTIES
    config_path.write_text(_server_properties(port, data))
    _format_storage(java, jars, data, config_path)
    command = _jvm_command(java, jars, data, "kafka.Kafka", str(config_path))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)


def broker_pid(port: int = DEFAULT_PORT, data_dir: Path | str | None = None) -> int | None:
    """The pid of the broker JVM started from this port's data directory, if running."""
    data = Path(data_dir).resolve() if data_dir is not None else default_data_dir(port)
    return _find_broker_pid(data) if data.is_dir() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A local single-node Kafka broker.")
    # run: the broker in the foreground (exec), for a container's main process.
    parser.add_argument("command", choices=["start", "stop", "status", "run"])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="client port")
    parser.add_argument("--data-dir", type=Path, default=None, help="default: var/kafka-PORT")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            started_at = time.monotonic()
            bootstrap = start_broker(args.port, args.data_dir)
            pid = broker_pid(args.port, args.data_dir)
            _info(
                f"broker ready at {bootstrap} (pid {pid if pid is not None else 'not ours'}) "
                f"after {time.monotonic() - started_at:.1f} s"
            )
            print(bootstrap)
            return 0
        if args.command == "run":
            run_broker_in_foreground(args.port, args.data_dir or default_data_dir(args.port))
        if args.command == "stop":
            stopped = stop_broker(args.port, args.data_dir)
            _info("broker stopped" if stopped else f"no broker of ours on port {args.port}")
            return 0
        up = broker_is_up(args.port)
        pid = broker_pid(args.port, args.data_dir)
        print(f"{'up' if up else 'down'} {bootstrap_address(args.port)} pid={pid}")
        return 0 if up else 1
    except BrokerError as exc:
        print(f"[kafka] error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
