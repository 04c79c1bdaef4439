"""A federation in containers, from the project's own images, driven only over HTTP.

Needs a Docker engine and the images ``a6-registry-node:local`` and ``a6-kafka:local``
(``deploy/containers/prepare.sh`` makes both). Without them the tests are skipped, and
fail under ``CI`` (``.ci/run`` runs prepare.sh first, so there they are present).

Every container runs on the host network (the engine has no bridge: prepare.sh starts
it with ``--bridge=none``), so the ports below are 127.0.0.1 ports of this machine,
chosen apart from the other suites' (19092 Kafka, 5432 PostgreSQL, 8101+ demo) and from
docker-compose.yml's. Testcontainers' Ryuk reaper is off (its image cannot be pulled
here); the fixtures remove their containers and volumes themselves, and every object
they create carries the label ``LABEL`` for a manual ``docker rm -f $(docker ps -aq
--filter label=a6-tests=containers)`` after a crash.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from deploy.federation.launcher import NodeClient

from a6wire.directory import FederationDirectory, FederationMember
from a6wire.topics import inbox_topic
from tests.conftest import _unavailable, docker_answers

# Before testcontainers reads its configuration.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

NODE_IMAGE = "a6-registry-node:local"
KAFKA_IMAGE = "a6-kafka:local"
KAFKA_PORT = 29192  # its KRaft controller takes 29193
NODE_PORTS = {"GHA": 28111, "CHE": 28112, "THA": 28113}
LABEL = {"a6-tests": "containers"}
# A cold JVM broker, or a node migrating its database, on a loaded 2-core host.
HEALTHY_TIMEOUT_S = 180
# `registry-node init`: key, config and a migrated SQLite database.
INIT_TIMEOUT_S = 120
DIRECTORY_MOUNT = "/federation"
LOG_TAIL_LINES = 40


def _docker_client() -> Any:
    import docker  # type: ignore[import-untyped]

    return docker.from_env()


@pytest.fixture(scope="session")
def container_engine() -> Iterator[Any]:
    """A Docker client on an engine that answers and has the project's images."""
    if not docker_answers():
        _unavailable(
            "no Docker engine answers (DOCKER_HOST or /var/run/docker.sock); "
            "deploy/containers/prepare.sh installs and starts one"
        )
    import docker

    client = _docker_client()
    try:
        for image in (NODE_IMAGE, KAFKA_IMAGE):
            try:
                client.images.get(image)
            except docker.errors.ImageNotFound:
                _unavailable(f"image {image} is missing; deploy/containers/prepare.sh builds it")
        from testcontainers.core.config import testcontainers_config

        testcontainers_config.ryuk_disabled = True
        yield client
    finally:
        client.close()


def _started(container: Any) -> Any:
    """Start a testcontainers container and wait for its image's HEALTHCHECK."""
    from testcontainers.core.wait_strategies import HealthcheckWaitStrategy

    container.waiting_for(HealthcheckWaitStrategy().with_startup_timeout(HEALTHY_TIMEOUT_S))
    try:
        container.start()
    except (RuntimeError, TimeoutError) as exc:
        logs = container.get_wrapped_container().logs(tail=LOG_TAIL_LINES).decode(errors="replace")
        raise AssertionError(f"{container.image} did not become healthy: {exc}\n{logs}") from exc
    return container


def _run_once(client: Any, command: list[str], volume: str, entrypoint: list[str] | None) -> str:
    """Run the node image to completion (bounded by INIT_TIMEOUT_S); its stdout."""
    container = client.containers.run(
        NODE_IMAGE,
        command,
        entrypoint=entrypoint,
        volumes={volume: {"bind": "/data", "mode": "rw"}},
        network_mode="host",
        labels=LABEL,
        detach=True,
    )
    try:
        status = container.wait(timeout=INIT_TIMEOUT_S)["StatusCode"]
        output: bytes = container.logs(stdout=True, stderr=False)
        if status != 0:
            logs = container.logs(tail=LOG_TAIL_LINES).decode(errors="replace")
            raise AssertionError(f"{' '.join(command)} exited {status}:\n{logs}")
        return output.decode()
    finally:
        container.remove(force=True)


def _init_node(client: Any, party: str, volume: str) -> dict[str, str]:
    """`registry-node init` in the node image, into the Party's volume; its config."""
    # init prints the node's public key on its last line, `public_key=...`.
    output = _run_once(
        client,
        [
            "init",
            "--party",
            party,
            "--registry-id",
            f"{party}01",
            "--data-dir",
            "/data",
            "--kafka-bootstrap-servers",
            f"127.0.0.1:{KAFKA_PORT}",
            "--api-host",
            "127.0.0.1",
            "--api-port",
            str(NODE_PORTS[party]),
            # One broker: topics with one replica (outside local mode they need three).
            "--local",
        ],
        volume,
        None,
    )
    text = _run_once(client, ["/data/registry.env"], volume, ["cat"])
    config = dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")
    )
    keys = [line for line in output.splitlines() if line.startswith("public_key=")]
    assert keys, f"registry-node init printed no public key:\n{output}"
    config["PUBLIC_KEY"] = keys[-1].partition("=")[2].strip()
    return config


@dataclass
class ContainerFederation:
    """The running node containers, their clients, and what a test may do to a node's
    container: pause it (the cgroup freezer), ``docker kill`` it, start it anew from
    the same volume. It is a :class:`deploy.federation.demo.Nodes` too."""

    kafka_bootstrap: str
    nodes: dict[str, NodeClient]
    _make: Callable[[str], Any]
    _running: dict[str, Any]
    _all: list[Any] = field(default_factory=list)

    def node(self, party: str) -> NodeClient:
        return self.nodes[party]

    def _wrapped(self, party: str) -> Any:
        return self._running[party].get_wrapped_container()

    def pause(self, party: str) -> None:
        self._wrapped(party).pause()

    def unpause(self, party: str) -> None:
        wrapped = self._wrapped(party)
        wrapped.reload()
        if wrapped.status == "paused":
            wrapped.unpause()

    def kill(self, party: str) -> None:
        """``docker kill`` (SIGKILL): no shutdown hook of the node runs."""
        wrapped = self._wrapped(party)
        wrapped.kill()
        wrapped.reload()
        assert wrapped.status == "exited", f"{party}'s container is {wrapped.status} after kill"

    def restart(self, party: str) -> None:
        """Remove the killed container and start a new one on the same volume."""
        killed = self._running.pop(party)
        killed.stop()
        self._all.remove(killed)
        container = self._make(party)
        self._all.append(container)
        self._running[party] = _started(container)

    def close(self) -> None:
        for container in reversed(self._all):
            try:
                container.stop()  # force-removes, paused or not
            except Exception as exc:  # already removed by restart()
                print(f"container {container.image}: {exc}")


@pytest.fixture(scope="module")
def container_federation(
    container_engine: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ContainerFederation]:
    """A KRaft broker and one node per Party of ``NODE_PORTS``, each in its container."""
    from testcontainers.core.container import DockerContainer

    client = container_engine
    run_id = uuid.uuid4().hex[:8]
    volumes = {party: f"a6-tests-{party.lower()}-{run_id}" for party in NODE_PORTS}
    containers: list[Any] = []
    directory_dir = tmp_path_factory.mktemp("container-federation")
    # The node runs as an unprivileged user: the bind-mounted directory must be readable.
    directory_dir.chmod(0o755)

    def node_container(party: str) -> Any:
        return (
            DockerContainer(NODE_IMAGE)
            .with_command(["serve", "--env-file", "/data/registry.env"])
            .with_env("REGISTRY_DIRECTORY_PATH", f"{DIRECTORY_MOUNT}/directory.json")
            .with_volume_mapping(volumes[party], "/data", "rw")
            .with_volume_mapping(str(directory_dir), DIRECTORY_MOUNT, "ro")
            .with_name(f"a6-tests-node-{party.lower()}-{run_id}")
            .with_kwargs(network_mode="host", labels=LABEL)
        )

    federation = ContainerFederation(
        kafka_bootstrap=f"127.0.0.1:{KAFKA_PORT}",
        nodes={},
        _make=node_container,
        _running={},
        _all=containers,
    )
    try:
        for name in volumes.values():
            client.volumes.create(name, labels=LABEL)
        kafka = (
            DockerContainer(KAFKA_IMAGE)
            .with_env("KAFKA_PORT", str(KAFKA_PORT))
            .with_name(f"a6-tests-kafka-{run_id}")
            .with_kwargs(network_mode="host", labels=LABEL)
        )
        containers.append(kafka)
        _started(kafka)
        configs = {party: _init_node(client, party, volumes[party]) for party in NODE_PORTS}
        directory = FederationDirectory(
            members=tuple(
                FederationMember(
                    party=party,
                    registry_id=f"{party}01",
                    public_key_base64=config["PUBLIC_KEY"],
                    inbox_topic=inbox_topic(party),
                )
                for party, config in configs.items()
            )
        )
        directory_file = directory_dir / "directory.json"
        directory_file.write_text(directory.model_dump_json(indent=2) + "\n")
        directory_file.chmod(0o644)
        for party, config in configs.items():
            node = node_container(party)
            containers.append(node)
            federation._running[party] = _started(node)
            federation.nodes[party] = _client(party, config)
        yield federation
    finally:
        federation.close()
        for name in volumes.values():
            try:
                client.volumes.get(name).remove(force=True)
            except Exception as exc:  # a volume never created, or already gone
                print(f"volume {name}: {exc}")


def _client(party: str, config: Mapping[str, str]) -> NodeClient:
    return NodeClient(
        party=party,
        registry_id=config["REGISTRY_REGISTRY_ID"],
        api_url=f"http://127.0.0.1:{NODE_PORTS[party]}",
        operator_token=config["REGISTRY_OPERATOR_TOKENS"].split(",")[0],
        auditor_token=config["REGISTRY_AUDITOR_TOKENS"].split(",")[0],
        public_key_base64=config["PUBLIC_KEY"],
        data_dir=Path("/data"),
        env_file=Path("/data/registry.env"),
        database_url=config["REGISTRY_DATABASE_URL"],
        log_path=Path("/proc/1/fd/1"),
    )
