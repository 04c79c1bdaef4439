"""Shared fixtures: a real Kafka broker and a real PostgreSQL, and a fresh database per test.

Where the services come from (first match wins):

``kafka_bootstrap``
    1. ``KAFKA_BOOTSTRAP_SERVERS`` if set (it must answer a Kafka Metadata request within
       ``KAFKA_ANSWER_TIMEOUT_S``);
    2. a container of the project's image ``a6-kafka:local`` when a Docker daemon answers
       (``DOCKER_HOST``, else /var/run/docker.sock; the ``docker`` binary alone does not
       count), on the host network on a free port below 32768;
    3. the local JVM broker of ``deploy/kafka/broker.py`` on port ``TEST_KAFKA_PORT``
       (19092, controller on 19093, data in ``var/kafka-19092``). Tests never use 9092, so
       a developer's ``make kafka-up`` broker and its topics are left alone. A broker that
       already answers on 19092 is reused, which keeps repeated runs fast
       (``python deploy/kafka/broker.py start --port 19092`` keeps one warm). A broker
       started by a test session is stopped by the last test session to finish, so
       parallel sessions in one working tree do not pull it from under each other; one
       started by hand is never stopped.

``postgres_url``
    1. ``DATABASE_URL`` if set; 2. a container of ``a6-postgres:local`` when a Docker
    daemon answers; 3. ``deploy/postgres/local_postgres.py`` (127.0.0.1:5432, left running).

The order is :func:`tests.service_sources.choose_source`. When a daemon answers and the
images are missing, ``deploy/containers/prepare.sh`` builds them once, before the first
test runs (so the build is not charged to a test's timeout). The containers (testcontainers,
Ryuk off) are removed at the end of the session. A daemon that answers but gives no
working container fails the run under ``CI``; elsewhere the session warns and falls back
to the local service.

When ``CI`` is set (non-empty), a service that cannot be obtained fails the tests that
need it; elsewhere they are skipped with the reason.

``database_url`` is parametrised over ``sqlite`` and ``postgresql`` and gives each test an
empty database: a file in ``tmp_path``, or a database ``t_<uuid hex>`` created for the test
(the role needs CREATEDB) and dropped with ``WITH (FORCE)`` afterwards. Only the
``postgresql`` case starts PostgreSQL.

Tests are marked by folder: tests/unit -> unit, tests/integration -> integration,
tests/e2e -> e2e, tests/sim -> sim, tests/containers -> containers (the project's own
images in a Docker engine, see tests/containers/conftest.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import importlib.util
import os
import secrets
import sys
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import IO, NoReturn

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError

from tests import service_sources
from tests.service_sources import ServiceContainerError, Source, choose_source

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent

TEST_KAFKA_PORT = 19092
TEST_POSTGRES_PORT = 5432
# A given bootstrap or database must answer within this; a dead one fails fast.
KAFKA_ANSWER_TIMEOUT_S = 15.0
POSTGRES_CONNECT_TIMEOUT_S = 10
DOCKER_PING_TIMEOUT_S = 3
# Fixtures (and the database_url parameter) that need each service.
KAFKA_FIXTURES = frozenset({"kafka_bootstrap"})
POSTGRES_FIXTURES = frozenset({"postgres_url", "postgres_admin_engine"})

FOLDER_MARKERS = {
    "unit": "unit",
    "integration": "integration",
    "e2e": "e2e",
    "sim": "sim",
    "containers": "containers",
}


# tryfirst: runs before pytest's own -m deselection, which then sees the folder markers.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test after its top folder, so ``-m unit`` and the like need no boilerplate."""
    for item in items:
        with contextlib.suppress(ValueError):
            folder = item.path.resolve().relative_to(TESTS_DIR).parts[0]
            marker = FOLDER_MARKERS.get(folder)
            if marker is not None and item.get_closest_marker(marker) is None:
                item.add_marker(marker)


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def _load_script(name: str, path: Path) -> ModuleType:
    """deploy/ holds scripts, not packages: load one by path, once."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _broker_script() -> ModuleType:
    return _load_script("a6_deploy_kafka_broker", REPO_ROOT / "deploy" / "kafka" / "broker.py")


def _postgres_script() -> ModuleType:
    return _load_script(
        "a6_deploy_local_postgres", REPO_ROOT / "deploy" / "postgres" / "local_postgres.py"
    )


@functools.cache
def docker_answers() -> bool:
    """True when a Docker daemon answers a ping (the docker binary alone is not enough)."""
    try:
        import docker  # type: ignore[import-untyped]

        client = docker.from_env(timeout=DOCKER_PING_TIMEOUT_S)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def _kafka_source() -> Source:
    return choose_source(os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), docker_answers)


def _postgres_source() -> Source:
    return choose_source(os.environ.get("DATABASE_URL"), docker_answers)


def _needs(item: pytest.Item, fixtures: frozenset[str], database_param: str | None) -> bool:
    if fixtures & set(getattr(item, "fixturenames", ())):
        return True
    callspec = getattr(item, "callspec", None)
    return (
        database_param is not None
        and callspec is not None
        and callspec.params.get("database_url") == database_param
    )


def _container_failed(service: str, exc: ServiceContainerError) -> None:
    """A daemon answered but gave no working container: fatal under CI, else a warning."""
    if service_sources.container_failure_is_fatal(os.environ):
        pytest.fail(
            f"{service}: a Docker daemon answers but gave no working container "
            f"(CI is set, so this fails instead of falling back to the local service): {exc}",
            pytrace=False,
        )
    message = f"{service}: no working container ({exc}); using the local service instead"
    warnings.warn(message, stacklevel=2)
    print(f"\n[conftest] {message}", file=sys.stderr)


# Images that failed to build in this session, so the fixtures report it instead of
# trying again.
_IMAGE_BUILD_ERRORS: dict[str, ServiceContainerError] = {}


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the service images the selected tests will need before any test runs."""
    images = []
    # The Docker probe (in *_source) only when a selected test needs the service.
    needs_kafka = any(_needs(item, KAFKA_FIXTURES, None) for item in session.items)
    if needs_kafka and _kafka_source() is Source.CONTAINER:
        images.append(service_sources.KAFKA_IMAGE)
    needs_postgres = any(_needs(item, POSTGRES_FIXTURES, "postgresql") for item in session.items)
    if needs_postgres and _postgres_source() is Source.CONTAINER:
        images.append(service_sources.POSTGRES_IMAGE)
    if not images:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")

    def progress(line: str) -> None:
        if reporter is not None:
            reporter.write_line(f"[conftest] {line}")

    try:
        service_sources.ensure_images(tuple(images), progress)
    except ServiceContainerError as exc:
        for image in images:
            _IMAGE_BUILD_ERRORS[image] = exc


def _session_tag() -> str:
    return f"{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _ensure_image(image: str) -> None:
    """The image, built now if the collection hook did not (a fixture looked up late)."""
    if image in _IMAGE_BUILD_ERRORS:
        raise _IMAGE_BUILD_ERRORS[image]
    service_sources.ensure_images((image,), lambda line: print(f"\n[conftest] {line}"))


@contextlib.contextmanager
def _kafka_from_container() -> Iterator[str]:
    _ensure_image(service_sources.KAFKA_IMAGE)
    with service_sources.kafka_container(_session_tag()) as container:
        # The HEALTHCHECK ran inside the container; this asks from where the tests are.
        if not _broker_script().wait_for_kafka(container.address, KAFKA_ANSWER_TIMEOUT_S):
            raise ServiceContainerError(
                f"{service_sources.KAFKA_IMAGE} is healthy but {container.address} did not "
                f"answer a Metadata request within {KAFKA_ANSWER_TIMEOUT_S:.0f} s"
            )
        yield container.address


@contextlib.contextmanager
def _postgres_from_container() -> Iterator[str]:
    _ensure_image(service_sources.POSTGRES_IMAGE)
    password = secrets.token_urlsafe(18)
    with service_sources.postgres_container(_session_tag(), password) as container:
        engine = create_engine(
            container.address, connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S}
        )
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise ServiceContainerError(
                f"{service_sources.POSTGRES_IMAGE} is healthy but does not answer: {exc}"
            ) from exc
        finally:
            engine.dispose()
        yield container.address


# ---------------------------------------------------------------------------------- Kafka


@contextlib.contextmanager
def _local_test_broker(port: int) -> Iterator[str]:
    """The local JVM broker, shared by concurrent test sessions of this working tree.

    Every session holds a shared lock on ``.test-sessions`` while it runs. On the way out a
    session that gets the lock exclusively is the last one, and stops the broker if a test
    session (not a person) started it, as recorded by ``.started-by-tests``.
    """
    broker = _broker_script()
    data_dir: Path = broker.default_data_dir(port)
    data_dir.mkdir(parents=True, exist_ok=True)
    sessions_path = data_dir / ".test-sessions"
    marker = data_dir / ".started-by-tests"
    handle: IO[str] = sessions_path.open("a")
    try:
        # Blocks only while a finishing session is stopping the broker.
        fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
        if not broker.broker_is_up(port):
            try:
                bootstrap = broker.start_broker(port=port, data_dir=data_dir)
            except broker.BrokerError as exc:
                _unavailable(f"could not start the local Kafka broker: {exc}")
            marker.touch()
        else:
            bootstrap = broker.bootstrap_address(port)
        yield bootstrap
    finally:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pass  # another session still uses the broker
        else:
            if marker.exists():
                broker.stop_broker(port=port, data_dir=data_dir)
                marker.unlink(missing_ok=True)
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """``host:port[,...]`` of a Kafka broker that answers; see the module docstring."""
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if given:
        try:
            answers = _broker_script().wait_for_kafka(given, KAFKA_ANSWER_TIMEOUT_S)
        except ValueError as exc:
            _unavailable(f"KAFKA_BOOTSTRAP_SERVERS={given!r} is not usable: {exc}")
        if not answers:
            _unavailable(
                f"KAFKA_BOOTSTRAP_SERVERS={given!r}: no Kafka broker answered a Metadata "
                f"request within {KAFKA_ANSWER_TIMEOUT_S:.0f} s"
            )
        yield given
        return
    if _kafka_source() is Source.CONTAINER:
        with contextlib.ExitStack() as stack:
            try:
                bootstrap = stack.enter_context(_kafka_from_container())
            except ServiceContainerError as exc:
                _container_failed("Kafka", exc)
            else:
                yield bootstrap
                return
    with _local_test_broker(TEST_KAFKA_PORT) as bootstrap:
        yield bootstrap


# ----------------------------------------------------------------------------- PostgreSQL


def _check_postgres(url: str, source: str) -> None:
    engine = create_engine(url, connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        _unavailable(f"{source}: PostgreSQL does not answer: {exc}")
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL (``postgresql+psycopg://...``) of a PostgreSQL database that answers."""
    given = os.environ.get("DATABASE_URL", "").strip()
    if given:
        if make_url(given).get_backend_name() != "postgresql":
            _unavailable(f"DATABASE_URL={given!r} is not a PostgreSQL URL")
        _check_postgres(given, "DATABASE_URL")
        yield given
        return
    if _postgres_source() is Source.CONTAINER:
        with contextlib.ExitStack() as stack:
            try:
                url = stack.enter_context(_postgres_from_container())
            except ServiceContainerError as exc:
                _container_failed("PostgreSQL", exc)
            else:
                yield url
                return
    script = _postgres_script()
    try:
        url = str(script.ensure_postgres(TEST_POSTGRES_PORT))
    except script.PostgresError as exc:
        _unavailable(f"could not start the local PostgreSQL: {exc}")
    _check_postgres(url, "deploy/postgres/local_postgres.py")
    yield url


@pytest.fixture(scope="session")
def postgres_admin_engine(postgres_url: str) -> Iterator[Engine]:
    """An AUTOCOMMIT engine on ``postgres_url``, for CREATE and DROP DATABASE."""
    engine = create_engine(
        postgres_url,
        isolation_level="AUTOCOMMIT",
        pool_size=1,
        connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S},
    )
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for this test, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+pysqlite:///{tmp_path / 'test.sqlite3'}"
        return
    # Looked up here, so SQLite-only runs never start PostgreSQL.
    admin: Engine = request.getfixturevalue("postgres_admin_engine")
    name = f"t_{uuid.uuid4().hex}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except SQLAlchemyError as exc:
        _unavailable(f"cannot create a test database (does the role have CREATEDB?): {exc}")
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        # FORCE: a test that forgot to dispose its engine must not leak the database.
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
