"""With a Docker daemon answering (and neither KAFKA_BOOTSTRAP_SERVERS nor DATABASE_URL
given), the session's Kafka and PostgreSQL are containers of the project's own images.

The containers are found independently of the fixtures' bookkeeping: by their label, and
by the port the service the tests use really answers on.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from sqlalchemy import Engine, text

from tests.conftest import _unavailable, docker_answers
from tests.service_sources import KAFKA_IMAGE, POSTGRES_IMAGE, SERVICES_LABEL


@pytest.fixture(scope="module")
def docker_client() -> Any:
    for variable in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL"):
        if os.environ.get(variable, "").strip():
            pytest.skip(f"{variable} is given, so the fixtures use it, not a container")
    if not docker_answers():
        _unavailable("no Docker daemon answers (DOCKER_HOST or /var/run/docker.sock)")
    import docker  # type: ignore[import-untyped]

    client = docker.from_env()
    yield client
    client.close()


def _service_container(client: Any, port_variable: str, port: int) -> dict[str, Any]:
    """`docker inspect` of the one running service container told to listen on ``port``."""
    label = ",".join(f"{key}={value}" for key, value in SERVICES_LABEL.items())
    found = []
    for container in client.containers.list(filters={"label": label, "status": "running"}):
        attrs: dict[str, Any] = client.api.inspect_container(container.id)
        if f"{port_variable}={port}" in attrs["Config"]["Env"]:
            found.append(attrs)
    assert len(found) == 1, f"{len(found)} running service containers with {port_variable}={port}"
    return found[0]


def test_the_session_kafka_is_an_a6_kafka_container(
    docker_client: Any, kafka_bootstrap: str
) -> None:
    host, _, port = kafka_bootstrap.rpartition(":")
    assert host == "127.0.0.1"
    attrs = _service_container(docker_client, "KAFKA_PORT", int(port))
    assert attrs["Config"]["Image"] == KAFKA_IMAGE
    assert attrs["HostConfig"]["NetworkMode"] == "host"
    assert attrs["State"]["Health"]["Status"] == "healthy"
    assert int(port) < 32768


def test_the_session_postgresql_is_an_a6_postgres_container(
    docker_client: Any, postgres_admin_engine: Engine
) -> None:
    with postgres_admin_engine.connect() as connection:
        # The port of the server that answered, as the server itself reports it.
        port = connection.execute(text("SHOW port")).scalar_one()
    attrs = _service_container(docker_client, "POSTGRES_PORT", int(port))
    assert attrs["Config"]["Image"] == POSTGRES_IMAGE
    assert attrs["HostConfig"]["NetworkMode"] == "host"
    assert attrs["State"]["Health"]["Status"] == "healthy"
    assert int(port) < 32768
