"""A TLS broker with client certificates required and ACLs refusing by default.

``secure_kafka`` starts (or reuses) deploy/kafka/broker.py --tls-dir on port
``KAFKA_TLS_PORT`` (default ``TEST_KAFKA_TLS_PORT``, controller one above), with a
PKI of deploy/kafka/pki.py in ``var/kafka-tls-pki-PORT`` (created once, then reused
and extended: certificates for new Parties come from the same CA). A broker the
session started is stopped at its end; one that already answered is left running.
"""

from __future__ import annotations

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
    started = False
    if not broker.broker_is_up(port, tls.probe_context()):
        try:
            broker.start_broker(port=port, tls_dir=pki_dir)
        except broker.BrokerError as exc:
            _unavailable(f"could not start the local TLS Kafka broker: {exc}")
        started = True
    try:
        yield SecureKafka(broker.bootstrap_address(port), pki_dir)
    finally:
        if started:
            broker.stop_broker(port=port)
