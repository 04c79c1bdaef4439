"""The project's images and the compose federation: sizes, build times, time to healthy.

    .venv/bin/python bench/containers_bench.py                  # everything below
    .venv/bin/python bench/containers_bench.py --skip-builds    # sizes and compose only
    .venv/bin/python bench/containers_bench.py --output c.json

Needs a Docker engine that answers (``DOCKER_HOST``, else /var/run/docker.sock) and the
base image ``debian:bookworm-slim`` (``deploy/containers/prepare.sh --no-images`` makes
both). It measures, in this order:

1. **Build from nothing**: each image built by ``prepare.sh --no-cache IMAGE`` (the same
   build path as ``make containers``, every layer rebuilt, only the base image reused:
   Debian packages, PyPI wheels and Kafka's Maven jars are downloaded again).
2. **Sizes**: ``docker image inspect`` ``.Size`` of each image after the builds.
3. **Time to a healthy federation**: ``make compose-down``, then the wall time of
   ``make compose-up``, which returns once the broker, the three PostgreSQLs and the
   three nodes are healthy (images already built, so mostly start-up); ``make
   compose-down`` again at the end unless ``--keep-up``.

Prints one JSON document (and writes it to ``--output``); numbers depend on the machine,
so quote them with it (``nproc``, load).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
PREPARE = REPO_ROOT / "deploy" / "containers" / "prepare.sh"
IMAGES = ("a6-registry-node:local", "a6-kafka:local", "a6-postgres:local")
BASE_IMAGE = "debian:bookworm-slim"
# A build from nothing downloads a JDK, Kafka's jars and the node's wheels; on a loaded
# 2-core machine that can take a quarter of an hour.
BUILD_TIMEOUT_S = 1800
# compose_demo.py --wait-only bounds its own wait; this bounds the whole make run.
COMPOSE_UP_TIMEOUT_S = 900
COMPOSE_DOWN_TIMEOUT_S = 300
DOCKER_TIMEOUT_S = 60


class BenchError(Exception):
    """A step the numbers depend on failed."""


def _run(command: list[str], timeout_s: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            command,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            **kwargs,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{' '.join(command)} did not finish within {timeout_s} s") from exc
    if result.returncode != 0:
        raise BenchError(
            f"{' '.join(command)} exited {result.returncode}:\n{result.stderr[-3000:]}"
            f"{result.stdout[-2000:]}"
        )
    return result


def _timed(command: list[str], timeout_s: float) -> float:
    started = time.monotonic()
    _run(command, timeout_s)
    return round(time.monotonic() - started, 1)


def _image_size_mb(image: str) -> float:
    size = _run(["docker", "image", "inspect", "-f", "{{.Size}}", image], DOCKER_TIMEOUT_S)
    return round(int(size.stdout.strip()) / 1_000_000, 1)


def _compose_ports_free() -> list[int]:
    """Ports of docker-compose.yml already taken on 127.0.0.1 (a compose-up would fail)."""
    import socket

    taken = []
    for port in (29092, 29093, 25433, 25434, 25435, 28001, 28002, 28003):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                taken.append(port)
    return taken


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-builds", action="store_true", help="no --no-cache builds")
    parser.add_argument("--skip-compose", action="store_true", help="no compose-up timing")
    parser.add_argument("--keep-up", action="store_true", help="leave the federation running")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)

    _run(["docker", "image", "inspect", BASE_IMAGE], DOCKER_TIMEOUT_S)
    report: dict[str, Any] = {
        "machine": {
            "nproc": os.cpu_count(),
            "loadavg_1m_at_start": round(os.getloadavg()[0], 2),
            "platform": platform.platform(),
            "docker_host": os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"),
        },
        "base_image": BASE_IMAGE,
    }
    if not args.skip_builds:
        builds: dict[str, float] = {}
        for image in IMAGES:
            print(f"[bench] building {image} with --no-cache", file=sys.stderr)
            builds[image] = _timed([str(PREPARE), "--no-cache", image], BUILD_TIMEOUT_S)
            print(f"[bench] {image}: {builds[image]} s", file=sys.stderr)
        report["build_from_nothing_s"] = builds
    report["image_size_mb"] = {image: _image_size_mb(image) for image in IMAGES}
    if not args.skip_compose:
        _run(["make", "compose-down"], COMPOSE_DOWN_TIMEOUT_S)
        taken = _compose_ports_free()
        if taken:
            raise BenchError(f"docker-compose.yml's ports {taken} are taken on 127.0.0.1")
        print("[bench] make compose-up", file=sys.stderr)
        report["compose_up_to_three_healthy_nodes_s"] = _timed(
            ["make", "compose-up"], COMPOSE_UP_TIMEOUT_S
        )
        if not args.keep_up:
            _run(["make", "compose-down"], COMPOSE_DOWN_TIMEOUT_S)
    report["machine"]["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    document = json.dumps(report, indent=2)
    print(document)
    if args.output is not None:
        args.output.write_text(document + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench/containers_bench.py: {exc}", file=sys.stderr)
        sys.exit(1)
