"""The secure variant: three node processes on a TLS, authenticated, ACL'd three-broker cluster.

deploy/kafka/pki.py issues the CA and every certificate; deploy/kafka/broker.py
--brokers 3 --tls-dir runs the cluster (client certificates required, the
StandardAuthorizer, nothing allowed without an ACL) on ``KAFKA_SECURE_CLUSTER_PORT``
(default ``TEST_KAFKA_SECURE_CLUSTER_PORT``: brokers on PORT, PORT+2, PORT+4,
controllers one above each; data in ``var/kafka-tls-PORT``); the federation admin
creates the topics (three replicas, two in sync) and the ACLs, as deploy/kafka/acls.py
does. Each node is configured only through its env file
(``REGISTRY_KAFKA_SECURITY_PROTOCOL=SSL`` and its own certificate), and a first and an
onward transfer commit with conservation and the corresponding adjustment intact.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from deploy.federation.launcher import Federation, FederationSpec, PartySpec

from registry.adapters.messaging import KafkaTls, MessagingConfig, provision_federation
from tests.conftest import REPO_ROOT, _load_script, _unavailable
from tests.e2e.helpers import (
    World,
    assert_federation_invariants,
    assert_transfers_atomic,
    ca_entries,
    holdings,
    issue,
    open_account,
    record_loa,
    register_approach,
    run_transfer,
    transfer_body,
    wait_status,
)

pytestmark = pytest.mark.slow

TEST_KAFKA_SECURE_CLUSTER_PORT = 19102
CLUSTER_BROKERS = 3
SENDER, BUYER, THIRD = "PER", "CHE", "SWE"
PARTIES = (SENDER, BUYER, THIRD)
APPROACH = "CA0401"
LOA = "PER-LOA-0401"
VINTAGE = 2025
ENV_PREFIX = "REGISTRY_"


def _script(name: str) -> ModuleType:
    return _load_script(f"a6_deploy_kafka_{name}", REPO_ROOT / "deploy" / "kafka" / f"{name}.py")


@pytest.fixture(scope="module")
def secure_cluster() -> Iterator[tuple[str, Any]]:
    """(bootstrap, PKI) of a running TLS three-broker cluster; stopped if we started it."""
    broker = _script("broker")
    port = int(os.environ.get("KAFKA_SECURE_CLUSTER_PORT", TEST_KAFKA_SECURE_CLUSTER_PORT))
    ports = broker.cluster_ports(port, CLUSTER_BROKERS)
    data_dirs = [REPO_ROOT / "var" / f"kafka-tls-{p}" for p in ports]
    pki = _script("pki").create_pki(
        REPO_ROOT / "var" / f"kafka-tls-cluster-pki-{port}", PARTIES, brokers=CLUSTER_BROKERS
    )
    try:
        bootstrap = broker.start_cluster(
            port, CLUSTER_BROKERS, tls_dir=pki.root, data_dirs=data_dirs
        )
    except broker.BrokerError as exc:
        _unavailable(f"could not start the local TLS three-broker cluster: {exc}")
    try:
        yield bootstrap, pki
    finally:
        broker.stop_cluster(port, CLUSTER_BROKERS, data_dirs=data_dirs)


def _tls(identity: Any) -> KafkaTls:
    return KafkaTls(identity.ca_path, identity.cert_path, identity.key_path)


@contextlib.contextmanager
def _secure_federation(bootstrap: str, pki: Any, base_dir: Path) -> Iterator[World]:
    federation = Federation(
        FederationSpec(
            parties=[PartySpec(party) for party in PARTIES],
            base_dir=base_dir,
            kafka_bootstrap=bootstrap,
            api_port_base=None,
        )
    )
    federation.prepare()
    for party, node in federation.nodes.items():
        identity = pki.parties[party]
        with node.env_file.open("a") as config:
            config.write(
                f"{ENV_PREFIX}KAFKA_SECURITY_PROTOCOL=SSL\n"
                f"{ENV_PREFIX}KAFKA_SSL_CA_PATH={identity.ca_path}\n"
                f"{ENV_PREFIX}KAFKA_SSL_CERT_PATH={identity.cert_path}\n"
                f"{ENV_PREFIX}KAFKA_SSL_KEY_PATH={identity.key_path}\n"
            )
    # The federation admin's part (deploy/kafka/acls.py): topics, then ACLs.
    members = {
        party: MessagingConfig.for_party(party, bootstrap, production=True) for party in PARTIES
    }
    asyncio.run(provision_federation(bootstrap, members, tls=_tls(pki.admin)))
    federation.start()
    try:
        yield World(federation, bootstrap)
    finally:
        federation.stop()


@pytest.fixture(scope="module")
def world(
    secure_cluster: tuple[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    bootstrap, pki = secure_cluster
    with _secure_federation(bootstrap, pki, tmp_path_factory.mktemp("secure")) as running:
        register_approach(running, APPROACH, PARTIES)
        record_loa(running, SENDER, LOA, APPROACH, (BUYER, THIRD))
        yield running


def test_first_and_onward_transfers_commit_on_the_secure_cluster(world: World) -> None:
    accounts = {party: f"{party}-SECURE" for party in PARTIES}
    for party, account_id in accounts.items():
        open_account(world, party, account_id)
    issue(world, SENDER, accounts[SENDER], APPROACH, 800, vintage=VINTAGE, authorisation_id=LOA)

    first = transfer_body(accounts[SENDER], BUYER, accounts[BUYER], 800, LOA)
    views = run_transfer(world, SENDER, first)
    assert [view["status"] for view in views] == ["COMMITTED", "COMMITTED"], views
    wait_status(world, SENDER, first["transfer_id"], {"COMMITTED"}, completed=True)
    first_adjustments = [
        e for e in ca_entries(world, SENDER) if e["transfer_id"] == first["transfer_id"]
    ]
    assert [(e["year"], e["cause"], e["quantity"]) for e in first_adjustments] == [
        (VINTAGE, "FIRST_TRANSFER", 800)
    ]
    ca_before = {party: ca_entries(world, party) for party in PARTIES}

    onward = transfer_body(accounts[BUYER], THIRD, accounts[THIRD], 500, LOA)
    views = run_transfer(world, BUYER, onward)
    assert [view["status"] for view in views] == ["COMMITTED", "COMMITTED"], views
    assert holdings(world, SENDER, accounts[SENDER]) == 0
    assert holdings(world, BUYER, accounts[BUYER]) == 300
    assert holdings(world, THIRD, accounts[THIRD]) == 500
    # Units already first-transferred carry no second adjustment, anywhere.
    for party in PARTIES:
        assert ca_entries(world, party) == ca_before[party], f"{party}'s CA ledger changed"
    assert_transfers_atomic(world)
    assert_federation_invariants(world)
    # The federation's corresponding adjustments, all ledgers together: the first
    # transfer's, at the Party that authorised the units, and nothing else.
    federation_ca = {
        party: [
            (e["transfer_id"], e["year"], e["cause"], e["quantity"])
            for e in ca_entries(world, party)
        ]
        for party in PARTIES
    }
    assert federation_ca == {
        SENDER: [(first["transfer_id"], VINTAGE, "FIRST_TRANSFER", 800)],
        BUYER: [],
        THIRD: [],
    }
