"""The registry node container's healthcheck: exit 0 when ``GET /v1/health`` answers 200.

The port is the node's own: its settings resolved as ``registry-node serve`` resolves
them, from the environment and the ``--env-file`` that the container's main process
(pid 1) was started with. A node on the host network has a port of its own, so the
image cannot hard-code one.
"""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

from registry.settings import SettingsError, load_settings

# Docker's own --timeout (3 s) ends a hung check; this one ends the request first.
HEALTH_REQUEST_TIMEOUT_S = 2.0


def _env_file_of_pid_1() -> Path | None:
    try:
        args = Path("/proc/1/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return None
    for index, arg in enumerate(args):
        if arg == "--env-file" and index + 1 < len(args):
            return Path(args[index + 1])
        if arg.startswith("--env-file="):
            return Path(arg.partition("=")[2])
    return None


def main() -> int:
    try:
        settings = load_settings(_env_file_of_pid_1())
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 1
    url = f"http://127.0.0.1:{settings.api_port}/v1/health"
    try:
        with urllib.request.urlopen(url, timeout=HEALTH_REQUEST_TIMEOUT_S) as response:
            return 0 if response.status == 200 else 1
    except OSError as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
