"""A node's federation directory across versions, through the composition root.

Built with ``build_node`` on a SQLite database, as ``serve`` builds it: the node
starts from its directory file (the genesis, or a signed version the authority
handed it) and the version it adopted last; a version offered to it (what the
directory topic's subscriber does with each record) is adopted only when newer
and signed by the configured authority, is stored so a restart starts from it,
and switches the node's signer to the key the version names for its Party.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from a6wire.directory import (
    FederationDirectory,
    FederationMember,
    MemberStatus,
    amend,
    sign_directory,
)
from a6wire.keys import generate_private_key, public_key_base64, save_private_key_pem
from a6wire.topics import inbox_topic
from registry.application.transfers import InitiateTransfer
from registry.bootstrap import BootstrapError, Node, build_node
from registry.domain.authorisations import Purpose
from registry.domain.selection import QuantitySelection
from registry.settings import Settings

pytestmark = pytest.mark.integration

PARTY = "THA"
PEER = "GHA"
NOW = datetime.now(UTC)


def _member(party: str, key: Ed25519PrivateKey) -> FederationMember:
    return FederationMember(
        party=party,
        registry_id=f"{party}01",
        public_key_base64=public_key_base64(key),
        inbox_topic=inbox_topic(party),
    )


class Federation:
    """The files of one node and of the authority that signs its directory versions."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.authority = generate_private_key()
        self.node_key = generate_private_key()
        self.peer_key = generate_private_key()
        self.data_dir = root / "node"
        self.data_dir.mkdir()
        self.key_path = self.data_dir / "node_ed25519.pem"
        save_private_key_pem(self.node_key, self.key_path)
        self.genesis = FederationDirectory(
            members=(_member(PARTY, self.node_key), _member(PEER, self.peer_key))
        )
        self.directory_path = root / "directory.json"
        self.directory_path.write_text(self.genesis.model_dump_json())

    def settings(self, **changes: object) -> Settings:
        values: dict[str, object] = {
            "party": PARTY,
            "registry_id": f"{PARTY}01",
            "data_dir": self.data_dir,
            "local_mode": True,
            "key_path": self.key_path,
            "directory_path": self.directory_path,
            "federation_authority_keys": [public_key_base64(self.authority)],
        }
        values.update(changes)
        return Settings(**values)  # type: ignore[arg-type]

    def signed(self, directory: FederationDirectory, key: Ed25519PrivateKey | None = None) -> bytes:
        return sign_directory(directory, key or self.authority).to_json()

    def node(self, **changes: object) -> Node:
        return build_node(self.settings(**changes))


@pytest.fixture
def federation(tmp_path: Path) -> Federation:
    return Federation(tmp_path)


def _live(node: Node) -> FederationDirectory:
    assert node.messaging is not None
    return node.messaging.directory.current()


def _offer(node: Node, data: bytes) -> FederationDirectory | None:
    assert node.messaging is not None
    return node.messaging.directory.offer(data)


def test_a_node_with_only_the_genesis_file_holds_version_0(federation: Federation) -> None:
    node = federation.node()
    try:
        assert _live(node).version == 0
        assert node.transfers.federation.registry_of(PEER) == f"{PEER}01"
    finally:
        node.close()


def test_an_adopted_version_is_used_at_once_and_a_restart_starts_from_it(
    federation: Federation,
) -> None:
    joining = generate_private_key()
    version_1 = amend(federation.genesis, issued_at=NOW, add=(_member("JPN", joining),))
    node = federation.node()
    try:
        assert node.transfers.federation.registry_of("JPN") is None
        adopted = _offer(node, federation.signed(version_1))
        assert adopted is not None
        assert adopted.version == 1
        assert node.transfers.federation.registry_of("JPN") == "JPN01"
        assert node.transfers.federation.inbox_topic_of("JPN") == inbox_topic("JPN")
    finally:
        node.close()
    restarted = federation.node()
    try:
        assert _live(restarted).version == 1
        assert restarted.transfers.federation.registry_of("JPN") == "JPN01"
    finally:
        restarted.close()


def test_refused_versions_leave_the_held_one_and_log_one_line_each(
    federation: Federation,
) -> None:
    version_1 = amend(federation.genesis, issued_at=NOW, suspend=(PEER,))
    version_2 = amend(version_1, issued_at=NOW, reinstate=(PEER,))
    node = federation.node()
    try:
        assert _offer(node, federation.signed(version_1)) is not None
        with structlog.testing.capture_logs() as logs:
            # Signed by a member, not by the authority; an older version; garbage.
            assert _offer(node, federation.signed(version_2, federation.peer_key)) is None
            older = federation.genesis.model_copy(update={"version": 1, "issued_at": NOW})
            assert _offer(node, federation.signed(older)) is None
            assert _offer(node, b"{not json") is None
        assert _live(node).version == 1
        assert _live(node).member(PEER).status is MemberStatus.SUSPENDED
        refusals = [entry for entry in logs if "refused" in entry["event"]]
        assert [entry["reason_code"] for entry in refusals] == [
            "DIRECTORY_NOT_AUTHORISED",
            "DIRECTORY_NOT_NEWER",
            "DIRECTORY_MALFORMED",
        ]
    finally:
        node.close()


def test_without_authority_keys_no_published_version_is_adopted(federation: Federation) -> None:
    version_1 = amend(federation.genesis, issued_at=NOW, suspend=(PEER,))
    node = federation.node(federation_authority_keys=[])
    try:
        assert _offer(node, federation.signed(version_1)) is None
        assert _live(node).version == 0
    finally:
        node.close()


def test_a_suspended_member_is_refused_a_new_transfer_at_its_start(
    federation: Federation,
) -> None:
    node = federation.node()
    try:
        _offer(node, federation.signed(amend(federation.genesis, issued_at=NOW, suspend=(PEER,))))
        outcome = node.transfers.initiate_transfer(
            InitiateTransfer(
                transfer_id=uuid.uuid4(),
                from_account_id="THA01-HOLDING-1",
                to_party=PEER,
                to_account_id="GHA01-HOLDING-1",
                selection=QuantitySelection(quantity=1),
                authorisation_id="THA-LOA-1",
                purpose=Purpose.NDC,
            )
        )
        assert outcome.refused
        assert "MEMBER_SUSPENDED" in outcome.view.record.reasons
    finally:
        node.close()


def test_a_signed_directory_file_is_checked_against_the_authority(federation: Federation) -> None:
    version_1 = amend(federation.genesis, issued_at=NOW, suspend=(PEER,))
    federation.directory_path.write_bytes(federation.signed(version_1, federation.peer_key))
    with pytest.raises(BootstrapError, match="not signed by the configured authority"):
        federation.node()
    federation.directory_path.write_bytes(federation.signed(version_1))
    with pytest.raises(BootstrapError, match="FEDERATION_AUTHORITY_KEYS"):
        federation.node(federation_authority_keys=[])
    node = federation.node()
    try:
        assert _live(node).version == 1
    finally:
        node.close()


def test_the_signer_switches_to_the_key_the_version_names_when_the_node_holds_it(
    federation: Federation,
) -> None:
    old = public_key_base64(federation.node_key)
    not_installed, new_key = generate_private_key(), generate_private_key()
    deadline = NOW + timedelta(hours=1)
    version_1 = amend(
        federation.genesis,
        issued_at=NOW,
        rotate=((PARTY, public_key_base64(not_installed), deadline),),
    )
    version_2 = amend(
        federation.genesis.model_copy(update={"version": 1}),
        issued_at=NOW,
        rotate=((PARTY, public_key_base64(new_key), deadline),),
    )
    node = federation.node()
    try:
        signer = node.transfers._signer
        assert signer is not None
        assert public_key_base64(signer.public_key) == old
        # A key the node does not hold: it keeps signing with the one peers still accept.
        _offer(node, federation.signed(version_1))
        assert public_key_base64(signer.public_key) == old
        save_private_key_pem(new_key, federation.key_path.with_name("node_ed25519.pem.next"))
        _offer(node, federation.signed(version_2))
        assert public_key_base64(signer.public_key) == public_key_base64(new_key)
    finally:
        node.close()
    restarted = federation.node()
    try:
        signer = restarted.transfers._signer
        assert signer is not None
        assert public_key_base64(signer.public_key) == public_key_base64(new_key)
    finally:
        restarted.close()
