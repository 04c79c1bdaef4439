"""The launcher's promises: separate processes, databases and keys; one directory;
a crashed node comes back with its data; stopping leaves nothing behind."""

from __future__ import annotations

import signal

import httpx
import pytest
from deploy.federation.launcher import Federation, group_alive
from deploy.federation.seed import national_account

from a6wire.directory import FederationDirectory
from a6wire.keys import load_private_key_pem, public_key_base64
from tests.e2e.conftest import DEFAULT_PARTIES, FederationFactory


def _holdings(federation: Federation, party: str) -> int:
    with federation.node(party).operator() as client:
        response = client.get(f"/v1/accounts/{national_account(party)}/holdings")
    response.raise_for_status()
    return int(response.json()["total_quantity"])


def test_each_party_runs_its_own_process_database_and_key(federation: Federation) -> None:
    nodes = [federation.node(party) for party in DEFAULT_PARTIES]
    pids = {federation.pid(node.party) for node in nodes}
    assert None not in pids
    assert len(pids) == len(DEFAULT_PARTIES)
    assert len({node.database_url for node in nodes}) == len(DEFAULT_PARTIES)
    for node in nodes:
        with node.public() as client:
            health = client.get("/v1/health").json()
        assert (health["party"], health["registry_id"]) == (node.party, node.registry_id)
        assert health["database_reachable"] is True
        assert node.database_url.endswith(f"/{node.party}/registry.sqlite3")
        # The key the node signs with is the key `init` reported.
        key = load_private_key_pem(node.data_dir / "node_ed25519.pem")
        assert public_key_base64(key) == node.public_key_base64
    assert len({node.public_key_base64 for node in nodes}) == len(DEFAULT_PARTIES)


def test_the_directory_lists_every_node_with_its_key(federation: Federation) -> None:
    directory = FederationDirectory.from_json(federation.directory_path.read_bytes())
    assert sorted(member.party for member in directory.members) == sorted(DEFAULT_PARTIES)
    for party in DEFAULT_PARTIES:
        member = directory.member(party)
        node = federation.node(party)
        assert member.registry_id == node.registry_id
        assert member.public_key_base64 == node.public_key_base64
        assert member.inbox_topic == f"a6.node.{party}.inbox"
        config = node.env_file.read_text()
        assert f"REGISTRY_DIRECTORY_PATH={federation.directory_path}" in config


def test_a_killed_node_restarts_healthy_with_its_data(federation: Federation) -> None:
    before = _holdings(federation, "GHA")
    assert before > 0, "the seed issued units at GHA"
    old_pid = federation.pid("GHA")
    assert old_pid is not None

    federation.kill("GHA", signal.SIGKILL)

    assert not federation.is_running("GHA")
    assert not group_alive(old_pid)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{federation.node('GHA').api_url}/v1/health", timeout=2.0)
    # The others do not notice.
    assert federation.node("CHE").healthy()

    federation.restart("GHA")

    assert federation.pid("GHA") not in (None, old_pid)
    assert federation.node("GHA").healthy()
    assert _holdings(federation, "GHA") == before


def test_stopping_leaves_no_process(federation_factory: FederationFactory) -> None:
    federation = federation_factory(seed=False)
    pids = [federation.pid(party) for party in DEFAULT_PARTIES]
    assert all(pid is not None and group_alive(pid) for pid in pids)

    federation.stop()

    assert [pid for pid in pids if pid is not None and group_alive(pid)] == []
    assert not any(federation.is_running(party) for party in DEFAULT_PARTIES)
    assert not any(federation.node(party).healthy() for party in DEFAULT_PARTIES)
