#!/usr/bin/env python3
"""A local PostgreSQL for development and tests, without Docker.

    python deploy/postgres/local_postgres.py start [--port 5432] [--data-dir DIR]
    python deploy/postgres/local_postgres.py stop  [--port 5432] [--data-dir DIR]
    python deploy/postgres/local_postgres.py url   [--port 5432]

``start`` does nothing but provisioning when a PostgreSQL of ours already answers on
127.0.0.1:PORT. Otherwise it installs Debian's ``postgresql`` package when no server
binaries are found (root only), creates a cluster with initdb, starts it with pg_ctl on
127.0.0.1 only, and makes sure the role ``a6`` (password ``a6``, CREATEDB so tests can make
a database each) and the database ``a6_registry_test`` exist. It prints the SQLAlchemy URL.

PostgreSQL refuses to run as root, so as root the cluster lives in
/var/lib/postgresql/a6-registry-PORT and every server command runs as the ``postgres``
user; a repository path may not be traversable by that user. Otherwise the cluster lives
in ``<repo>/var/postgres-PORT`` and runs as the current user.

The cluster is disposable: it runs with fsync, full_page_writes and synchronous_commit
off, which makes test databases fast to create and a power cut able to corrupt it.
Standard library only; importable as ``ensure_postgres(port) -> url``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import os
import pwd
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

DEFAULT_PORT = 5432
LOCALHOST = "127.0.0.1"
ROLE = "a6"
PASSWORD = "a6"
DATABASE = "a6_registry_test"
# initdb's bootstrap superuser, reachable only through the cluster's own Unix socket.
SUPERUSER = "postgres"
# The account PostgreSQL runs as when we are root; Debian's package creates it.
SERVICE_ACCOUNT = "postgres"

# A fresh cluster starts in about a second; a loaded CI runner may need far more.
PG_START_TIMEOUT_S = 60
PG_STOP_TIMEOUT_S = 60
INITDB_TIMEOUT_S = 300.0
# apt-get update plus the download and configuration of postgresql and its dependencies.
APT_TIMEOUT_S = 1800.0
PSQL_TIMEOUT_S = 60.0
PROBE_TIMEOUT_S = 1.0
POLL_INTERVAL_S = 0.2
LOCK_WAIT_TIMEOUT_S = APT_TIMEOUT_S + INITDB_TIMEOUT_S + PG_START_TIMEOUT_S
LOG_TAIL_LINES = 30
# Tests open an engine (with its pool) per test database; the default 100 is tight.
MAX_CONNECTIONS = 200
# sun_path holds 108 bytes; PostgreSQL needs room for "/.s.PGSQL.PORT" and a NUL.
MAX_SOCKET_DIR_BYTES = 90

# The PostgreSQL wire protocol's SSLRequest code: any PostgreSQL answers it with one byte.
SSL_REQUEST_CODE = 80877103

REPO_ROOT = Path(__file__).resolve().parents[2]
DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
# Stops Debian's package from creating and starting its own "main" cluster on port 5432
# when we install it: we run our own cluster, and theirs would take the port first.
CREATECLUSTER_DROPIN = Path("/etc/postgresql-common/createcluster.d/a6-registry.conf")
EXTRA_CONF = "a6-registry.conf"
SERVER_LOG = "postgres.log"


class PostgresError(RuntimeError):
    """PostgreSQL could not be installed, started or provisioned; the message says why."""


def database_url(port: int = DEFAULT_PORT) -> str:
    return f"postgresql+psycopg://{ROLE}:{PASSWORD}@{LOCALHOST}:{port}/{DATABASE}"


def _is_root() -> bool:
    return os.geteuid() == 0


def default_data_dir(port: int) -> Path:
    if _is_root():
        return Path(f"/var/lib/postgresql/a6-registry-{port}")
    return REPO_ROOT / "var" / f"postgres-{port}"


def _socket_dir(data_dir: Path, port: int) -> Path:
    if len(os.fsencode(str(data_dir))) <= MAX_SOCKET_DIR_BYTES:
        return data_dir
    # A deeply nested checkout: the socket goes to a short private directory instead.
    short = Path(tempfile.gettempdir()) / f"a6-registry-pg-{os.getuid()}-{port}"
    short.mkdir(mode=0o700, exist_ok=True)
    _chown_to_owner(short)
    return short


def _info(message: str) -> None:
    print(f"[postgres] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _locked(port: int, timeout_s: float = LOCK_WAIT_TIMEOUT_S) -> Iterator[None]:
    """Serialise provisioning, so parallel test sessions do not initdb or CREATE twice."""
    path = Path(tempfile.gettempdir()) / f"a6-registry-postgres-{port}.lock"
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
                    raise PostgresError(f"{path} stayed locked for {timeout_s:.0f} s") from exc
                time.sleep(POLL_INTERVAL_S)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def postgres_answers(port: int = DEFAULT_PORT, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """True when a PostgreSQL server (not just any TCP listener) answers on 127.0.0.1:port."""
    try:
        with socket.create_connection((LOCALHOST, port), timeout=timeout_s) as sock:
            sock.settimeout(timeout_s)
            sock.sendall(struct.pack(">ii", 8, SSL_REQUEST_CODE))
            return sock.recv(1) in (b"S", b"N")
    except OSError:
        return False


# ------------------------------------------------------------------------- binaries


def _version_key(bin_dir: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", bin_dir.parent.name)) or (0,)


def _find_bin_dir(data_dir: Path) -> Path | None:
    """The server binaries, preferring the major version the data directory was made by."""
    candidates = [
        path
        for path in sorted(Path("/").glob(DEBIAN_BIN_GLOB.lstrip("/")))
        if (path / "initdb").is_file() and (path / "pg_ctl").is_file()
    ]
    with contextlib.suppress(OSError):
        made_by = (data_dir / "PG_VERSION").read_text().strip()
        for candidate in candidates:
            if candidate.parent.name == made_by:
                return candidate
    if candidates:
        return max(candidates, key=_version_key)
    # Not Debian's layout (another distribution, or a build from source on PATH).
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl and (Path(pg_ctl).parent / "initdb").is_file():
        return Path(pg_ctl).parent
    return None


def _install_postgres() -> None:
    if not _is_root():
        raise PostgresError(
            "no PostgreSQL server binaries found (looked in /usr/lib/postgresql/*/bin and on "
            "PATH): install them first, e.g. `sudo apt-get install -y postgresql`."
        )
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        raise PostgresError(
            "no PostgreSQL server binaries found and no apt-get to install them with: "
            "install PostgreSQL's server package for this system."
        )
    CREATECLUSTER_DROPIN.parent.mkdir(parents=True, exist_ok=True)
    if not CREATECLUSTER_DROPIN.exists():
        CREATECLUSTER_DROPIN.write_text(
            "# Written by a6-registry deploy/postgres/local_postgres.py: it runs its own\n"
            "# cluster, so Debian's default one must not take port 5432.\n"
            "create_main_cluster = false\n"
        )
    _info("PostgreSQL server binaries missing: apt-get install -y postgresql")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in ([apt_get, "update"], [apt_get, "install", "-y", "postgresql"]):
        _run(command, APT_TIMEOUT_S, "installing PostgreSQL", env=env)


# ------------------------------------------------------------------------ commands


def _run(
    command: Sequence[str],
    timeout_s: float,
    what: str,
    *,
    env: dict[str, str] | None = None,
    new_session: bool = False,
) -> str:
    try:
        result = subprocess.run(
            list(command),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            env=env,
            # Ctrl-C in the calling terminal must not reach a server pg_ctl leaves running.
            start_new_session=new_session,
            # runuser keeps the caller's directory, which the service account may not read.
            cwd="/",
        )
    except subprocess.TimeoutExpired as exc:
        raise PostgresError(f"{what}: no result within {timeout_s:.0f} s") from exc
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()[-LOG_TAIL_LINES:]
        raise PostgresError(
            f"{what} failed (exit code {result.returncode}): {' '.join(command)}\n"
            + "\n".join(output)
        )
    return result.stdout


def _as_owner(command: Sequence[str]) -> list[str]:
    if _is_root():
        return ["runuser", "-u", SERVICE_ACCOUNT, "--", *command]
    return list(command)


def _chown_to_owner(path: Path) -> None:
    if _is_root():
        account = pwd.getpwnam(SERVICE_ACCOUNT)
        os.chown(path, account.pw_uid, account.pw_gid)


def _log_tail(data_dir: Path) -> str:
    try:
        lines = (data_dir / SERVER_LOG).read_text(errors="replace").splitlines()
    except OSError:
        return "(no server log)"
    return "\n".join(lines[-LOG_TAIL_LINES:])


def _initdb(bin_dir: Path, data_dir: Path) -> None:
    if _is_root():
        try:
            pwd.getpwnam(SERVICE_ACCOUNT)
        except KeyError as exc:
            raise PostgresError(
                f"running as root but there is no {SERVICE_ACCOUNT!r} user to run PostgreSQL"
            ) from exc
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _chown_to_owner(data_dir)
    _info(f"initdb {data_dir}")
    _run(
        _as_owner(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data_dir),
                f"--username={SUPERUSER}",
                # The socket lives in the 0700 data directory: only its owner reaches it.
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
                "--no-instructions",
                # Disposable cluster: no need to fsync the freshly written catalog.
                "--no-sync",
            ]
        ),
        INITDB_TIMEOUT_S,
        "initdb",
    )
    conf = data_dir / "postgresql.conf"
    with conf.open("a") as handle:
        handle.write(
            f"\n# Settings of deploy/postgres/local_postgres.py\ninclude = '{EXTRA_CONF}'\n"
        )


def _write_settings(data_dir: Path, port: int) -> None:
    """Rewritten on every start, so a changed --port or script takes effect."""
    settings = {
        "listen_addresses": f"'{LOCALHOST}'",
        "port": str(port),
        "unix_socket_directories": f"'{_socket_dir(data_dir, port)}'",
        "max_connections": str(MAX_CONNECTIONS),
        # Disposable development and test cluster: durability is not worth the latency.
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
    }
    path = data_dir / EXTRA_CONF
    path.write_text(
        "# Written by deploy/postgres/local_postgres.py on every start.\n"
        + "".join(f"{key} = {value}\n" for key, value in settings.items())
    )
    _chown_to_owner(path)


def _psql(bin_dir: Path, data_dir: Path, port: int, sql: str) -> str:
    command = [
        str(bin_dir / "psql"),
        "-X",
        "-q",
        "-t",
        "-A",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        str(_socket_dir(data_dir, port)),
        "-p",
        str(port),
        "-U",
        SUPERUSER,
        "-d",
        "postgres",
        "-c",
        sql,
    ]
    return _run(_as_owner(command), PSQL_TIMEOUT_S, "psql").strip()


def _provision(bin_dir: Path, data_dir: Path, port: int) -> None:
    """The test role and database, created if missing; cheap when they exist."""
    _psql(
        bin_dir,
        data_dir,
        port,
        f"DO $$BEGIN "
        f"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN "
        f"CREATE ROLE {ROLE}; END IF; "
        f"ALTER ROLE {ROLE} LOGIN CREATEDB PASSWORD '{PASSWORD}'; END$$;",
    )
    # DROP DATABASE ... WITH (FORCE) on a test database must be able to end an
    # autovacuum worker that happens to be in it; those run under no role, so
    # only pg_signal_backend lets a non-superuser terminate them.
    _psql(bin_dir, data_dir, port, f"GRANT pg_signal_backend TO {ROLE}")
    exists = _psql(
        bin_dir, data_dir, port, f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"
    )
    if exists != "1":
        _psql(bin_dir, data_dir, port, f"CREATE DATABASE {DATABASE} OWNER {ROLE}")


def _is_ours_running(data_dir: Path, port: int) -> bool:
    """postmaster.pid names a live server on this port: the one answering is ours."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        pid, pid_port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return False
    return pid_port == port and Path(f"/proc/{pid}").exists()


def _start(bin_dir: Path, data_dir: Path, port: int) -> None:
    _write_settings(data_dir, port)
    _info(f"starting PostgreSQL ({bin_dir.parent.name}) from {data_dir} on {LOCALHOST}:{port}")
    try:
        _run(
            _as_owner(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(data_dir),
                    "-l",
                    str(data_dir / SERVER_LOG),
                    "-w",
                    "-t",
                    str(PG_START_TIMEOUT_S),
                    "start",
                ]
            ),
            PG_START_TIMEOUT_S + PSQL_TIMEOUT_S,
            "pg_ctl start",
            new_session=True,
        )
    except PostgresError as exc:
        raise PostgresError(
            f"{exc}\nlast lines of {data_dir / SERVER_LOG}:\n{_log_tail(data_dir)}"
        ) from exc
    deadline = time.monotonic() + PG_START_TIMEOUT_S
    while not postgres_answers(port):
        if time.monotonic() >= deadline:
            raise PostgresError(
                f"PostgreSQL started but does not answer on {LOCALHOST}:{port}; last lines "
                f"of {data_dir / SERVER_LOG}:\n{_log_tail(data_dir)}"
            )
        time.sleep(POLL_INTERVAL_S)


def _check_foreign_server(data_dir: Path, port: int) -> None:
    """A PostgreSQL we did not start holds the port: usable only if our role logs in."""
    bin_dir = _find_bin_dir(data_dir)
    psql = bin_dir / "psql" if bin_dir else shutil.which("psql")
    if psql is None:
        # Nothing to check with; the tests will say so if the login fails.
        return
    env = {**os.environ, "PGPASSWORD": PASSWORD, "PGCONNECT_TIMEOUT": str(int(PSQL_TIMEOUT_S))}
    command = [
        str(psql),
        "-X",
        "-q",
        "-c",
        "SELECT 1",
        f"host={LOCALHOST} port={port} user={ROLE} dbname={DATABASE}",
    ]
    try:
        _run(command, PSQL_TIMEOUT_S, "logging in", env=env)
    except PostgresError as exc:
        raise PostgresError(
            f"a PostgreSQL not started by this script answers on {LOCALHOST}:{port} and the "
            f"role {ROLE!r} cannot use database {DATABASE!r} there. Create them "
            f"(CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{PASSWORD}'; CREATE DATABASE "
            f"{DATABASE} OWNER {ROLE}), or use another --port.\n{exc}"
        ) from exc


# ---------------------------------------------------------------------- public API


def ensure_postgres(port: int = DEFAULT_PORT, data_dir: Path | str | None = None) -> str:
    """A PostgreSQL on 127.0.0.1:``port`` with the test role and database; returns the URL."""
    data = Path(data_dir).resolve() if data_dir is not None else default_data_dir(port)
    with _locked(port):
        if postgres_answers(port):
            if _is_ours_running(data, port):
                bin_dir = _find_bin_dir(data)
                if bin_dir is None:
                    raise PostgresError("our cluster runs but its binaries are gone")
                _provision(bin_dir, data, port)
            else:
                _check_foreign_server(data, port)
            return database_url(port)
        bin_dir = _find_bin_dir(data)
        if bin_dir is None:
            _install_postgres()
            bin_dir = _find_bin_dir(data)
            if bin_dir is None:
                raise PostgresError("installed postgresql but found no initdb and pg_ctl")
        if not (data / "PG_VERSION").is_file():
            _initdb(bin_dir, data)
        _start(bin_dir, data, port)
        _provision(bin_dir, data, port)
        return database_url(port)


def stop_postgres(port: int = DEFAULT_PORT, data_dir: Path | str | None = None) -> bool:
    """Stop the cluster of this data directory; False when it was not running."""
    data = Path(data_dir).resolve() if data_dir is not None else default_data_dir(port)
    with _locked(port):
        if not _is_ours_running(data, port):
            return False
        bin_dir = _find_bin_dir(data)
        if bin_dir is None:
            raise PostgresError("our cluster runs but its binaries are gone")
        _run(
            _as_owner(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    str(PG_STOP_TIMEOUT_S),
                    "stop",
                ]
            ),
            PG_STOP_TIMEOUT_S + PSQL_TIMEOUT_S,
            "pg_ctl stop",
        )
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A local PostgreSQL for the a6 registry.")
    parser.add_argument("command", choices=["start", "stop", "url"])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            started_at = time.monotonic()
            url = ensure_postgres(args.port, args.data_dir)
            _info(f"ready after {time.monotonic() - started_at:.1f} s")
            print(url)
        elif args.command == "stop":
            stopped = stop_postgres(args.port, args.data_dir)
            _info("stopped" if stopped else f"no cluster of ours runs on port {args.port}")
        else:
            print(database_url(args.port))
        return 0
    except PostgresError as exc:
        print(f"[postgres] error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
