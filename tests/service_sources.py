"""Where the shared test services (Kafka, PostgreSQL) come from, and their containers.

The decision is a pure function of the environment and a Docker probe
(:func:`choose_source`), so its order is tested without a daemon; the rest of this module
is the container edge: the project's own images ``a6-kafka:local`` and
``a6-postgres:local``, built by ``deploy/containers/prepare.sh`` (the one build path of
the project's images) when a daemon answers and they are missing, each started on the
host network on a free port below 32768, with testcontainers' Ryuk reaper off: the
session removes its containers (and their anonymous volumes) itself. Every container
carries the label ``SERVICES_LABEL``; after a crash,
``docker rm -f -v $(docker ps -aq --filter label=a6-tests=services)`` clears them.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import os
import random
import socket
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Before testcontainers reads its configuration: the Ryuk image cannot be pulled where
# no registry answers, and the fixtures clean up after themselves.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

REPO_ROOT = Path(__file__).resolve().parent.parent
PREPARE_SCRIPT = REPO_ROOT / "deploy" / "containers" / "prepare.sh"
BUILD_LOCK_PATH = REPO_ROOT / "var" / "containers" / "service-images.lock"

KAFKA_IMAGE = "a6-kafka:local"
POSTGRES_IMAGE = "a6-postgres:local"
SERVICES_LABEL = {"a6-tests": "services"}
POSTGRES_USER = "postgres"
POSTGRES_DB = "postgres"

# Ports for the service containers (host network): below the kernel's ephemeral range,
# away from the fixed ports of the local services (19092, 5432), compose (25433-25435,
# 29092), tests/containers (28111-28113, 29192) and the demo (8101+).
SERVICE_PORT_MIN = 20000
SERVICE_PORT_MAX = 27999
SERVICE_PORT_TRIES_MAX = 50
# Building both images from nothing (Debian packages, a JDK, Kafka's jars from Maven
# Central) on a loaded 2-core machine.
IMAGE_BUILD_TIMEOUT_S = 1800
# A cold JVM broker, or initdb, on a loaded 2-core machine; the images' HEALTHCHECKs.
CONTAINER_HEALTHY_TIMEOUT_S = 180
CONTAINER_LOG_TAIL_LINES = 40


class Source(enum.Enum):
    """Where a shared service comes from."""

    GIVEN = "given"  # KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL
    CONTAINER = "container"  # the project's image in the Docker engine that answers
    LOCAL = "local"  # deploy/kafka/broker.py, deploy/postgres/local_postgres.py


def choose_source(given: str | None, docker_answers: Callable[[], bool]) -> Source:
    """The first that applies: a given address, a Docker daemon that answers, the local one.

    ``docker_answers`` is only called when no address is given, so a session with both
    variables set never probes Docker.
    """
    if given is not None and given.strip():
        return Source.GIVEN
    if docker_answers():
        return Source.CONTAINER
    return Source.LOCAL


def container_failure_is_fatal(environ: Mapping[str, str]) -> bool:
    """Under ``CI`` (non-empty) a daemon that answers but gives no working container fails
    the run; elsewhere the session warns and falls back to the local service."""
    return bool(environ.get("CI"))


class ServiceContainerError(Exception):
    """The engine answered, but an image could not be built or a container did not start."""


# ------------------------------------------------------------------------ Docker edge


def _docker_client() -> Any:
    import docker  # type: ignore[import-untyped]

    return docker.from_env()


def missing_images(images: tuple[str, ...]) -> tuple[str, ...]:
    """Those of ``images`` the engine does not hold."""
    import docker

    client = _docker_client()
    try:
        missing = []
        for image in images:
            try:
                client.images.get(image)
            except docker.errors.ImageNotFound:
                missing.append(image)
        return tuple(missing)
    except docker.errors.DockerException as exc:
        raise ServiceContainerError(f"the Docker engine did not list its images: {exc}") from exc
    finally:
        client.close()


def ensure_images(images: tuple[str, ...], progress: Callable[[str], None]) -> None:
    """Build those of ``images`` that are missing with ``prepare.sh`` (one session at a
    time per working tree: concurrent sessions wait for the first one's build)."""
    if not missing_images(images):
        return
    BUILD_LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
    with BUILD_LOCK_PATH.open("a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            missing = missing_images(images)
            if not missing:
                return
            progress(
                f"building {', '.join(missing)} with {PREPARE_SCRIPT.relative_to(REPO_ROOT)} "
                f"(first time only; up to {IMAGE_BUILD_TIMEOUT_S} s)"
            )
            try:
                result = subprocess.run(
                    [str(PREPARE_SCRIPT), *missing],
                    cwd=REPO_ROOT,
                    capture_output=True,
                    text=True,
                    timeout=IMAGE_BUILD_TIMEOUT_S,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise ServiceContainerError(
                    f"prepare.sh did not build {', '.join(missing)} "
                    f"within {IMAGE_BUILD_TIMEOUT_S} s"
                ) from exc
            if result.returncode != 0:
                raise ServiceContainerError(
                    f"prepare.sh exited {result.returncode} building {', '.join(missing)}:\n"
                    f"{result.stderr[-4000:]}"
                )
            still = missing_images(images)
            if still:
                raise ServiceContainerError(f"prepare.sh ran but {', '.join(still)} is missing")
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(span: int) -> int:
    """A port in [SERVICE_PORT_MIN, SERVICE_PORT_MAX) with the ``span - 1`` after it free."""
    for _ in range(SERVICE_PORT_TRIES_MAX):
        port = random.randrange(SERVICE_PORT_MIN, SERVICE_PORT_MAX - span)
        if all(_port_free(port + offset) for offset in range(span)):
            return port
    raise ServiceContainerError(
        f"no free port in [{SERVICE_PORT_MIN}, {SERVICE_PORT_MAX}) "
        f"after {SERVICE_PORT_TRIES_MAX} tries"
    )


@dataclass(frozen=True)
class ServiceContainer:
    """A running service container: where it answers and the container's id."""

    address: str
    container_id: str


@contextlib.contextmanager
def _running(image: str, env: Mapping[str, str], name: str) -> Iterator[str]:
    """Start ``image`` on the host network, wait for its HEALTHCHECK, yield its id; remove
    it and its anonymous volumes afterwards, whatever happened."""
    from testcontainers.core.config import testcontainers_config
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import HealthcheckWaitStrategy

    testcontainers_config.ryuk_disabled = True
    container = DockerContainer(image).with_name(name)
    for key, value in env.items():
        container = container.with_env(key, value)
    container = container.with_kwargs(network_mode="host", labels=SERVICES_LABEL).waiting_for(
        HealthcheckWaitStrategy().with_startup_timeout(CONTAINER_HEALTHY_TIMEOUT_S)
    )
    try:
        try:
            container.start()
        except Exception as exc:  # the docker SDK's and testcontainers' own errors alike
            wrapped = container.get_wrapped_container() if container._container else None
            logs = (
                wrapped.logs(tail=CONTAINER_LOG_TAIL_LINES).decode(errors="replace")
                if wrapped is not None
                else ""
            )
            raise ServiceContainerError(
                f"{image} did not become healthy within {CONTAINER_HEALTHY_TIMEOUT_S} s: "
                f"{exc}\n{logs}"
            ) from exc
        yield str(container.get_wrapped_container().id)
    finally:
        with contextlib.suppress(Exception):  # never created, or already gone
            container.stop(force=True, delete_volume=True)


@contextlib.contextmanager
def kafka_container(session_tag: str) -> Iterator[ServiceContainer]:
    """A KRaft broker of ``a6-kafka:local`` (client port and controller port + 1)."""
    port = free_port(span=2)
    with _running(KAFKA_IMAGE, {"KAFKA_PORT": str(port)}, f"a6-tests-kafka-{session_tag}") as cid:
        yield ServiceContainer(address=f"127.0.0.1:{port}", container_id=cid)


@contextlib.contextmanager
def postgres_container(session_tag: str, password: str) -> Iterator[ServiceContainer]:
    """A PostgreSQL of ``a6-postgres:local``; the address is a SQLAlchemy URL whose role
    (the cluster's superuser) may CREATE DATABASE."""
    port = free_port(span=1)
    env = {
        "POSTGRES_PORT": str(port),
        "POSTGRES_PASSWORD": password,
        "POSTGRES_USER": POSTGRES_USER,
        "POSTGRES_DB": POSTGRES_DB,
    }
    with _running(POSTGRES_IMAGE, env, f"a6-tests-postgres-{session_tag}") as cid:
        url = f"postgresql+psycopg://{POSTGRES_USER}:{password}@127.0.0.1:{port}/{POSTGRES_DB}"
        yield ServiceContainer(address=url, container_id=cid)
