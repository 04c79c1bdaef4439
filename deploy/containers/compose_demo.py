#!/usr/bin/env python3
"""``make compose-demo``: the story of ``make demo`` told against the docker-compose federation.

    python deploy/containers/compose_demo.py [--compose "docker compose"] [--wait-only]

Waits until the three nodes of ``docker-compose.yml`` answer ``/v1/health``, reads each
node's tokens from its ``registry.env`` in the federation volume (through ``compose exec``:
they exist only there), then seeds the federation and runs the demo's story through the
nodes' HTTP APIs, exactly as ``deploy/federation/demo.py`` does with local processes.
Seeding needs an empty federation: ``make compose-demo`` starts a fresh one.
``--wait-only`` stops after the wait (``make compose-up`` uses it).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as a script: make `deploy.federation` importable
    sys.path.insert(0, str(REPO_ROOT))

from deploy.federation.demo import (  # noqa: E402
    Story,
    console,
    print_party_table,
    run_story,
)
from deploy.federation.launcher import NodeClient  # noqa: E402
from deploy.federation.seed import SeedError, national_account, seed_federation  # noqa: E402

# The API ports of docker-compose.yml's nodes (host network, 127.0.0.1).
NODE_PORTS = {"CHE": 28001, "GHA": 28002, "THA": 28003}
# From `up` to three healthy nodes: PostgreSQL init, `registry-node init` with migrations,
# the broker's start, then the nodes' own start. About a minute on a loaded 2-core host.
HEALTHY_TIMEOUT_S = 300.0
HEALTH_POLL_INTERVAL_S = 1.0
HEALTH_PROBE_TIMEOUT_S = 2.0
COMPOSE_EXEC_TIMEOUT_S = 60.0
DEFAULT_COMPOSE = "docker compose"


class ComposeDemoError(RuntimeError):
    """The compose federation is not there or not usable; the message says why."""


@dataclass
class ComposeNodes:
    """The compose federation as the story sees it (demo.Nodes)."""

    nodes: Mapping[str, NodeClient]

    def node(self, party: str) -> NodeClient:
        return self.nodes[party]


def _api_url(party: str) -> str:
    return f"http://127.0.0.1:{NODE_PORTS[party]}"


def _healthy(party: str) -> bool:
    try:
        response = httpx.get(f"{_api_url(party)}/v1/health", timeout=HEALTH_PROBE_TIMEOUT_S)
    except httpx.HTTPError:
        return False
    return response.status_code == httpx.codes.OK


def wait_until_healthy(timeout_s: float = HEALTHY_TIMEOUT_S) -> float:
    """Seconds until every node answered 200 on /v1/health; raises past ``timeout_s``."""
    started = time.monotonic()
    waiting = set(NODE_PORTS)
    while waiting:
        waiting = {party for party in waiting if not _healthy(party)}
        if not waiting:
            break
        if time.monotonic() - started > timeout_s:
            raise ComposeDemoError(
                f"{', '.join(sorted(waiting))} not healthy after {timeout_s:.0f} s; "
                "see `docker compose ps` and `docker compose logs`"
            )
        time.sleep(HEALTH_POLL_INTERVAL_S)
    return time.monotonic() - started


def _read_in_volume(compose: list[str], party: str, name: str) -> str:
    command = [*compose, "exec", "-T", f"node-{party.lower()}", "cat", f"/data/{party}/{name}"]
    try:
        result = subprocess.run(
            command,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=COMPOSE_EXEC_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ComposeDemoError(f"{shlex.join(command)}: {exc}") from exc
    if result.returncode != 0:
        raise ComposeDemoError(f"{shlex.join(command)}: {result.stderr.strip()}")
    return result.stdout


def node_client(compose: list[str], party: str) -> NodeClient:
    """A client for one compose node, with the tokens its init step generated."""
    config: dict[str, str] = {}
    for line in _read_in_volume(compose, party, "registry.env").splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            config[name.strip()] = value.strip()
    try:
        return NodeClient(
            party=party,
            registry_id=config["REGISTRY_REGISTRY_ID"],
            api_url=_api_url(party),
            operator_token=config["REGISTRY_OPERATOR_TOKENS"].split(",")[0],
            auditor_token=config["REGISTRY_AUDITOR_TOKENS"].split(",")[0],
            public_key_base64=_read_in_volume(compose, party, "public_key").strip(),
            # Paths inside the node's container (the federation volume).
            data_dir=Path(config["REGISTRY_DATA_DIR"]),
            env_file=Path(f"/data/{party}/registry.env"),
            database_url=config["REGISTRY_DATABASE_URL"],
            # The container's log: `docker compose logs node-<party>`.
            log_path=Path("/proc/1/fd/1"),
        )
    except KeyError as exc:
        raise ComposeDemoError(f"{party}'s registry.env has no {exc.args[0]}") from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--compose", default=DEFAULT_COMPOSE, help="the compose command")
    parser.add_argument("--wait-only", action="store_true", help="stop once all are healthy")
    args = parser.parse_args(argv)
    compose = shlex.split(args.compose)
    try:
        with console.status("Waiting for the three nodes' /v1/health"):
            waited_s = wait_until_healthy()
        console.print(f" [green]✔[/] CHE, GHA, THA healthy (waited {waited_s:.1f} s)")
        if args.wait_only:
            return 0
        nodes = {party: node_client(compose, party) for party in NODE_PORTS}
        with console.status("Seeding accounts, cooperative approaches, LoAs, issuances"):
            seeded = seed_federation(nodes)
        console.print(f" [green]✔[/] seeded: {sum(seeded.issued.values()):,} units issued")
    except (ComposeDemoError, SeedError) as error:
        console.print(f"[bold red]error:[/] {error}", highlight=False)
        return 1
    story = Story(ComposeNodes(nodes))
    run_story(story)
    print_party_table(nodes.values())
    for node in nodes.values():
        console.print(
            f"[bold]{node.party}[/] ({node.registry_id})  API docs {node.docs_url}  "
            f"public page {node.public_url}  log: {args.compose} logs node-{node.party.lower()}",
            highlight=False,
            soft_wrap=True,
        )
    node = nodes["CHE"]
    console.print(
        f"Operator tokens: {args.compose} exec node-che cat /data/CHE/registry.env\n"
        f"Try: curl -H 'Authorization: Bearer <token>' "
        f"{node.api_url}/v1/accounts/{national_account(node.party)}/holdings",
        highlight=False,
        soft_wrap=True,
    )
    failed = [title for title, outcome in story.outcomes if not outcome.ok]
    if failed:
        console.print(f"[bold red]{len(failed)} step(s) did not end as expected.[/]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
