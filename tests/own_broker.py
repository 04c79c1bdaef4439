"""A Kafka broker of a test's own, which the test may stop and start again (an outage).

The shared session broker (``kafka_bootstrap``) must stay up for every other test; a
test that takes its broker down gets one of these instead: the local JVM broker of
``deploy/kafka/broker.py`` on a free port below 32768 (services that tests start stay
out of the kernel's ephemeral range), with its data directory under the test's
``tmp_path``, so a stopped and restarted broker keeps its topics and logs as a real
broker coming back from an outage would.
"""

from __future__ import annotations

import contextlib
import random
import socket
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import REPO_ROOT, _load_script

# Client port and controller port (client + 1) are both drawn from this range.
OWN_BROKER_PORT_MIN = 20000
OWN_BROKER_PORT_MAX = 32000
OWN_BROKER_PORT_TRIES_MAX = 50


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pair() -> int:
    """A client port whose controller port (port + 1) is free too."""
    for _ in range(OWN_BROKER_PORT_TRIES_MAX):
        port = random.randrange(OWN_BROKER_PORT_MIN, OWN_BROKER_PORT_MAX, 2)
        if _port_free(port) and _port_free(port + 1):
            return port
    raise RuntimeError(
        f"no free port pair in [{OWN_BROKER_PORT_MIN}, {OWN_BROKER_PORT_MAX}) "
        f"after {OWN_BROKER_PORT_TRIES_MAX} tries"
    )


class OwnBroker:
    """One local broker on its own port and data directory; ``stop``/``start`` at will."""

    def __init__(self, data_dir: Path) -> None:
        self._script = _load_script(
            "a6_deploy_kafka_broker", REPO_ROOT / "deploy" / "kafka" / "broker.py"
        )
        self.port = free_port_pair()
        self.data_dir = data_dir
        self.bootstrap: str = self._script.bootstrap_address(self.port)

    def start(self) -> None:
        self._script.start_broker(port=self.port, data_dir=self.data_dir)

    def stop(self) -> None:
        self._script.stop_broker(port=self.port, data_dir=self.data_dir)

    @property
    def up(self) -> bool:
        return bool(self._script.broker_is_up(self.port))


@contextlib.contextmanager
def own_broker(data_dir: Path) -> Iterator[OwnBroker]:
    """A started broker of the caller's own, stopped on the way out whatever happened."""
    broker = OwnBroker(data_dir)
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()
