"""A TLS broker with client certificates required and ACLs refusing by default.

``secure_kafka`` starts (or reuses) deploy/kafka/broker.py --tls-dir on port
``KAFKA_TLS_PORT`` (default ``TEST_KAFKA_TLS_PORT``, controller one above), with a
PKI of deploy/kafka/pki.py in ``var/kafka-tls-pki-PORT`` (created once, then reused
and extended: certificates for new Parties come from the same CA). As with the
plaintext test broker (tests/conftest.py), concurrent sessions share it: each holds a
shared lock while it runs, and the last one out stops it if a test session started it;
one started by hand is left running.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from registry.adapters.messaging import KafkaTls
from tests.conftest import REPO_ROOT, _load_script, _unavailable

TEST_KAFKA_TLS_PORT = 19094
# The Parties the secure tests use; the PKI gives each a certificate.
TEST_PARTIES = ("CHE", "GHA", "KEN")


def _pki_script() -> ModuleType:
    return _load_script("a6_deploy_kafka_pki", REPO_ROOT / "deploy" / "kafka" / "pki.py")


def _broker_script() -> ModuleType:
    return _load_script("a6_deploy_kafka_broker", REPO_ROOT / "deploy" / "kafka" / "broker.py")


@dataclass(frozen=True)
class SecureKafka:
    """A running TLS broker and the PKI whose CA its clients must hold certificates of."""

    bootstrap: str
    pki_dir: Path

    def party_tls(self, party: str) -> KafkaTls:
        return KafkaTls(
            ca_path=self.pki_dir / "ca" / "ca.crt",
            cert_path=self.pki_dir / "parties" / party / "node.crt",
            key_path=self.pki_dir / "parties" / party / "node.key",
        )

    @property
    def admin_tls(self) -> KafkaTls:
        return KafkaTls(
            ca_path=self.pki_dir / "ca" / "ca.crt",
            cert_path=self.pki_dir / "admin" / "admin.crt",
            key_path=self.pki_dir / "admin" / "admin.key",
        )


@pytest.fixture(scope="session")
def secure_kafka() -> Iterator[SecureKafka]:
    port = int(os.environ.get("KAFKA_TLS_PORT", TEST_KAFKA_TLS_PORT))
    broker = _broker_script()
    pki_dir = REPO_ROOT / "var" / f"kafka-tls-pki-{port}"
    _pki_script().create_pki(pki_dir, TEST_PARTIES, brokers=1)
    tls = broker.BrokerTls(pki_dir)
    data_dir: Path = broker.default_data_dir(port)
    data_dir.mkdir(parents=True, exist_ok=True)
    marker = data_dir / ".started-by-tests"
    with (data_dir / ".test-sessions").open("a") as sessions:
        # Blocks only while a finishing session is stopping the broker.
        fcntl.flock(sessions.fileno(), fcntl.LOCK_SH)
        try:
            if not broker.broker_is_up(port, tls.probe_context()):
                try:
                    broker.start_broker(port=port, tls_dir=pki_dir)
                except broker.BrokerError as exc:
                    _unavailable(f"could not start the local TLS Kafka broker: {exc}")
                marker.touch()
            yield SecureKafka(broker.bootstrap_address(port), pki_dir)
        finally:
            fcntl.flock(sessions.fileno(), fcntl.LOCK_UN)
            try:
                fcntl.flock(sessions.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                pass  # another session still uses the broker
            else:
                if marker.exists():
                    broker.stop_broker(port=port)
                    marker.unlink(missing_ok=True)
                fcntl.flock(sessions.fileno(), fcntl.LOCK_UN)
