"""Membership lifecycle on a running federation: a Party joins, a member is suspended
and reinstated, a member rotates its key, and no founding node ever restarts.

The federation's authority is a secretariat key made with
``registry-node federation authority-key``; every node is configured with its public
half (``REGISTRY_FEDERATION_AUTHORITY_KEYS``) and starts from the unsigned genesis
directory. Each change is made as an operator makes it: ``directory-next`` drafts the
next version, ``directory-sign`` signs it and ``directory-publish`` appends it to the
directory topic, which every node reads and applies live (``/v1/health`` says which
version a node holds).

- **Join:** ``JOINER`` runs ``registry-node init``, is added in a version, starts on that
  signed version, and transfers with the founders both ways.
- **Suspension:** ``C`` is suspended while a transfer to it is in flight (``C`` paused):
  the in-flight transfer still reaches one decision at both ends; a new transfer to
  ``C`` is refused at its start, and ``C`` refuses to start one. ``ROGUE``, a member
  in the genesis directory that runs no node (the test plays it on the bus), is
  suspended in the same version and sends a member a PREPARE anyway, validly signed
  with its own key: NO with ``MEMBER_SUSPENDED``. Reinstated, ``C`` receives again.
- **Key rotation:** ``B`` creates its next key (``registry-node federation next-key``),
  the authority announces it with a deadline for the old key; a transfer whose PREPARE
  ``B`` signed with the old key before the rotation (its receiver paused) still commits,
  ``B`` signs with the new key from then on, and once the old key's deadline is
  brought forward (``--retire-previous-keys``), a message signed with it is refused
  with ``KEY_EXPIRED``.

Each test ends with conservation, no double holding, atomic transfers and the CA
entries of the first transfers at the authorising Party.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from deploy.federation.launcher import FederationSpec, PartySpec

from a6wire.keys import generate_private_key, load_private_key_pem, public_key_base64
from a6wire.messages import (
    AuthorisationSnapshot,
    Envelope,
    Prepare,
    Purpose,
    SerialBlock,
    Vote,
    VoteChoice,
)
from a6wire.signing import public_key_from_base64, seal, signature_is_valid
from a6wire.topics import inbox_topic
from tests.e2e.helpers import (
    ACTIVITY_TYPE,
    GWP_VALUES,
    METRIC,
    MITIGATION_TYPE,
    SECTOR,
    TRANSFER_WAIT_S,
    RawRecord,
    World,
    assert_conservation,
    assert_no_double_holding,
    assert_transfers_atomic,
    ca_entries,
    create_inbox_topic,
    end_offsets,
    issue,
    marks_past,
    open_account,
    paused,
    post_transfer,
    produce_placed,
    record_loa,
    register_approach,
    run_transfer,
    running_federation,
    start_transfer,
    transfer_body,
    wait_for_record,
    wait_party_consumed,
    wait_status,
    wait_until,
)

# Party codes no other e2e module uses: consumer groups are named after the Party.
A, B, C = "MEX", "KOR", "ARG"
FOUNDERS = (A, B, C)
JOINER = "IDN"
ROGUE = "XRG"

APPROACH = "CA2201"
LOA = "MEX-LOA-2201"
VINTAGE = 2026
ISSUED = 2_000

# Until every node has read a published version (a poll of /v1/health).
DIRECTORY_ADOPTED_TIMEOUT_S = 60.0
CLI_TIMEOUT_S = 120.0
# The old key's deadline in the rotation: far enough that the in-flight transfer
# settles before it; the test then brings it forward rather than wait for it.
OLD_KEY_GRACE = timedelta(hours=1)
HOSTILE_PREPARE_DEADLINE = timedelta(minutes=5)
# A transfer kept in flight while its receiver is paused and the authority drafts,
# signs and publishes a version (four CLI runs on a loaded machine): it must not
# time out meanwhile, or it would abort for that reason instead.
IN_FLIGHT_DEADLINE_S = 600
KEY_FILE_NAME = "node_ed25519.pem"
TERMINAL_WIDTH_CHARS = "250"
QUARANTINED_METRIC = "registry_quarantined_records_total"
MESSAGE_ID_HEADER = "message_id"
MESSAGE_TYPE_HEADER = "message_type"


def account(party: str) -> str:
    return f"{party}-MAIN"


# --------------------------------------------------------------------- the authority


@dataclass
class Authority:
    """The secretariat: its key, the version in force, and the CLI it runs."""

    command: Sequence[str]
    workdir: Path
    bootstrap: str
    current: Path = field(init=False)
    public_key: str = field(init=False)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        done = self.run("authority-key", "--out", str(self.key_path))
        self.public_key = _printed_public_key(done.stdout)

    @property
    def key_path(self) -> Path:
        return self.workdir / "authority.pem"

    def run(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        return run_cli(self.command, *arguments)

    def publish(self, *changes: str) -> int:
        """Draft, sign and publish the next version; returns its number."""
        version = int(_directory_version(self.current)) + 1
        draft = self.workdir / f"draft-{version}.json"
        signed = self.workdir / f"directory-{version}.json"
        self.run("directory-next", "--current", str(self.current), "--out", str(draft), *changes)
        key = str(self.key_path)
        self.run("directory-sign", "--draft", str(draft), "--key", key, "--out", str(signed))
        self.run("directory-verify", "--file", str(signed), "--authority-keys", self.public_key)
        self.run("directory-publish", "--file", str(signed), "--bootstrap", self.bootstrap)
        self.current = signed
        return version


def run_cli(command: Sequence[str], *arguments: str) -> subprocess.CompletedProcess[str]:
    """``registry-node federation ...`` as an operator runs it, outside any node's settings."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    environment["COLUMNS"] = TERMINAL_WIDTH_CHARS
    done = subprocess.run(
        [*command, "federation", *arguments],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
        env=environment,
    )
    assert done.returncode == 0, f"registry-node federation {arguments[0]}: {done.stderr}"
    return done


def _printed_public_key(stdout: str) -> str:
    found = re.search(r"^public_key=(\S+)$", stdout, re.MULTILINE)
    assert found is not None, stdout
    return found.group(1)


def _directory_version(path: Path) -> int:
    document: dict[str, Any] = json.loads(path.read_text())
    directory = document.get("directory", document)
    return int(directory.get("version", 0))


def directory_version(world: World, party: str) -> int | None:
    response = httpx.get(f"{world.node(party).api_url}/v1/health", timeout=10.0)
    found = response.json().get("directory_version")
    return None if found is None else int(found)


def wait_adopted(world: World, parties: Sequence[str], version: int) -> None:
    for party in parties:

        def adopted(party: str = party) -> bool | None:
            return True if (directory_version(world, party) or 0) >= version else None

        wait_until(
            adopted,
            timeout_s=DIRECTORY_ADOPTED_TIMEOUT_S,
            what=f"{party} to adopt directory version {version}",
        )


# ------------------------------------------------------------------------- fixtures


@dataclass
class Scene:
    world: World
    authority: Authority
    pids: dict[str, int]
    rogue_key: Ed25519PrivateKey


def _registry_node_command() -> list[str]:
    return FederationSpec(parties=[], base_dir=Path()).command()


@pytest.fixture(scope="module")
def scene(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    base_dir = tmp_path_factory.mktemp("membership")
    authority = Authority(_registry_node_command(), base_dir / "authority", kafka_bootstrap)
    rogue_key = generate_private_key()
    with running_federation(
        kafka_bootstrap,
        base_dir / "federation",
        FOUNDERS,
        members_without_node={ROGUE: rogue_key},
        authority_keys=[authority.public_key],
    ) as world:
        asyncio.run(create_inbox_topic(kafka_bootstrap, ROGUE))
        authority.current = world.federation.directory_path
        register_approach(world, APPROACH, (*FOUNDERS, JOINER), register_at=FOUNDERS)
        record_loa(world, A, LOA, APPROACH, (B, C, JOINER))
        for party in FOUNDERS:
            open_account(world, party, account(party))
        issue(world, A, account(A), APPROACH, ISSUED, vintage=VINTAGE, authorisation_id=LOA)
        pids = {party: world.pid(party) for party in FOUNDERS}
        yield Scene(world, authority, pids, rogue_key)


# ------------------------------------------------------------------------- the checks


def _transfer(world: World, sender: str, receiver: str, quantity: int) -> str:
    """A transfer of A's units, committed at both ends; a first transfer (from A) is
    adjusted once at A, an onward one not at all."""
    before = ca_entries(world, A)
    body = transfer_body(account(sender), receiver, account(receiver), quantity, LOA)
    views = run_transfer(world, sender, body)
    assert [view["status"] for view in views] == ["COMMITTED", "COMMITTED"], views
    added = [entry for entry in ca_entries(world, A) if entry not in before]
    if sender == A:
        assert [(e["transfer_id"], e["cause"], e["quantity"]) for e in added] == [
            (body["transfer_id"], "FIRST_TRANSFER", quantity)
        ], added
    else:
        assert added == [], f"an onward transfer adjusted at {A}: {added}"
    return str(body["transfer_id"])


def _assert_federation_whole(scene: Scene) -> None:
    world = scene.world
    assert_conservation(world)
    assert_no_double_holding(world)
    assert_transfers_atomic(world)
    now = {party: world.pid(party) for party in FOUNDERS}
    assert now == scene.pids, "a founding node was restarted"


def _quarantined(world: World, party: str, reason: str) -> float:
    response = httpx.get(f"{world.node(party).api_url}/metrics", timeout=10.0)
    total = 0.0
    for line in response.text.splitlines():
        if line.startswith(QUARANTINED_METRIC) and f'reason="{reason}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


# -------------------------------------------------------------------------- scenarios


def test_a_party_joins_and_transfers_both_ways_without_any_restart(scene: Scene) -> None:
    world, authority = scene.world, scene.authority
    joiner = world.federation.init_joining(PartySpec(JOINER))
    version = authority.publish("--add", f"{JOINER}:{JOINER}01:{joiner.public_key_base64}")
    wait_adopted(world, FOUNDERS, version)
    # What the authority sends the new member: the signed version that lists it.
    world.federation.start_joining(JOINER, authority.current)
    assert directory_version(world, JOINER) == version
    register_approach(world, APPROACH, (*FOUNDERS, JOINER), register_at=(JOINER,))
    open_account(world, JOINER, account(JOINER))

    _transfer(world, A, JOINER, 300)
    _transfer(world, JOINER, B, 120)  # the joiner coordinates; B verifies its key
    _assert_federation_whole(scene)


async def test_a_suspended_member_gets_no_new_transfer_and_its_in_flight_one_is_decided(
    scene: Scene,
) -> None:
    world, authority = scene.world, scene.authority
    _transfer(world, A, C, 200)
    in_flight = transfer_body(account(A), C, account(C), 50, LOA, deadline_s=IN_FLIGHT_DEADLINE_S)
    with paused(world, C):
        start_transfer(world, A, in_flight)
        version = authority.publish("--suspend", C, "--suspend", ROGUE)
        wait_adopted(world, (A, B), version)
    wait_adopted(world, (C,), version)
    # The transfer in flight reaches one decision at both ends, whichever it is.
    sent = wait_status(world, A, in_flight["transfer_id"])
    received = wait_status(world, C, in_flight["transfer_id"])
    assert sent["status"] == received["status"], (sent, received)

    # A new transfer to C, or from C, is refused at its start.
    for sender, receiver in ((A, C), (C, B)):
        body = transfer_body(account(sender), receiver, account(receiver), 10, LOA)
        refused = post_transfer(world, sender, body, wait_s=TRANSFER_WAIT_S)
        assert refused.status_code == httpx.codes.CONFLICT, refused.text
        assert "MEMBER_SUSPENDED" in refused.json()["reasons"], refused.json()

    # The suspended ROGUE sends B a PREPARE anyway, validly signed: B votes NO.
    vote = await _prepare_and_vote(world, ROGUE, B, scene.rogue_key)
    assert vote.vote is VoteChoice.NO, vote
    assert "MEMBER_SUSPENDED" in vote.reason_codes, vote

    version = authority.publish("--reinstate", C)
    wait_adopted(world, FOUNDERS, version)
    _transfer(world, A, C, 30)
    _assert_federation_whole(scene)


async def test_a_rotated_key_keeps_in_flight_transfers_and_expires_at_its_deadline(
    scene: Scene,
) -> None:
    world, authority = scene.world, scene.authority
    _transfer(world, A, B, 400)
    node_b = world.node(B)
    old_key = load_private_key_pem(node_b.data_dir / KEY_FILE_NAME)
    made = run_cli(_registry_node_command(), "next-key", "--env-file", str(node_b.env_file))
    new_key = _printed_public_key(made.stdout)
    assert new_key != public_key_base64(old_key)

    # B's PREPARE, signed with the old key, waits in C's inbox across the rotation;
    # B's COMMIT of it will be signed with the new key.
    in_flight = transfer_body(account(B), C, account(C), 60, LOA, deadline_s=IN_FLIGHT_DEADLINE_S)
    deadline = (datetime.now(UTC) + OLD_KEY_GRACE).isoformat()
    with paused(world, C):
        start_transfer(world, B, in_flight)
        version = authority.publish("--rotate", f"{B}:{new_key}", "--old-key-valid-until", deadline)
        wait_adopted(world, (A, B), version)
    views = (
        wait_status(world, B, in_flight["transfer_id"]),
        wait_status(world, C, in_flight["transfer_id"]),
    )
    assert [view["status"] for view in views] == ["COMMITTED", "COMMITTED"], views

    # From now on B signs with its new key, and its transfers commit.
    since = await end_offsets(world.kafka_bootstrap, inbox_topic(C))
    transfer_id = _transfer(world, B, C, 70)
    prepare = await wait_for_record(
        world.kafka_bootstrap, inbox_topic(C), transfer_id, "PREPARE", since=since
    )
    assert signature_is_valid(prepare.envelope(), public_key_from_base64(new_key)), prepare

    # The authority brings the old key's deadline forward: a message signed with it
    # is now refused with KEY_EXPIRED (quarantined, counted), and changes nothing.
    version = authority.publish("--retire-previous-keys", B)
    wait_adopted(world, FOUNDERS, version)
    before = _quarantined(world, A, "KEY_EXPIRED")
    placed = await _send(world, _sealed(_prepare(B, A), B, old_key), inbox_topic(A))
    await wait_party_consumed(world, A, marks_past([placed]))
    assert _quarantined(world, A, "KEY_EXPIRED") == before + 1
    _assert_federation_whole(scene)


# ------------------------------------------------------------------------- on the bus


def _sealed(payload: Prepare, sender: str, key: Ed25519PrivateKey) -> Envelope:
    return seal(
        payload,
        sender_party=sender,
        sent_at=datetime.now(UTC),
        message_id=uuid.uuid4(),
        private_key=key,
    )


async def _prepare_and_vote(
    world: World, sender: str, receiver: str, key: Ed25519PrivateKey
) -> Vote:
    """Put ``sender``'s PREPARE on ``receiver``'s inbox; the vote ``receiver`` answers."""
    prepare = _prepare(sender, receiver)
    since = await end_offsets(world.kafka_bootstrap, inbox_topic(sender))
    placed = await _send(world, _sealed(prepare, sender, key), inbox_topic(receiver))
    await wait_party_consumed(world, receiver, marks_past([placed]))
    answer = await wait_for_record(
        world.kafka_bootstrap, inbox_topic(sender), str(prepare.transfer_id), "VOTE", since=since
    )
    vote = answer.envelope().payload
    assert isinstance(vote, Vote), answer.json()
    return vote


def _prepare(sender: str, receiver: str) -> Prepare:
    """A PREPARE of serials nobody issued: what it carries does not matter here."""
    return Prepare(
        transfer_id=uuid.uuid4(),
        coordinator_party=sender,
        participants=(receiver,),
        from_registry_id=f"{sender}01",
        from_account_id=account(sender),
        to_registry_id=f"{receiver}01",
        to_account_id=account(receiver),
        blocks=(
            SerialBlock(
                first_serial=900_001,
                last_serial=900_010,
                quantity=10,
                cooperative_approach_id=APPROACH,
                originating_registry_id=f"{A}01",
                first_transferring_party=A,
                vintage=VINTAGE,
                metric=METRIC,
                gwp=GWP_VALUES,
                mitigation_type=MITIGATION_TYPE,
                sector=SECTOR,
                activity_type=ACTIVITY_TYPE,
                first_transfer_done=True,
                authorisation_id=LOA,
                authorisation_version=1,
            ),
        ),
        authorisation=AuthorisationSnapshot(
            authorisation_id=LOA,
            authorisation_date=date(2024, 1, 15),
            cooperative_approach_id=APPROACH,
            version=1,
            authorised_parties=(B, C, JOINER),
            purposes=(Purpose.NDC,),
            mitigation_from=date(2021, 1, 1),
            mitigation_to=date(2030, 12, 31),
            use_from=date(2021, 1, 1),
            use_to=date(2035, 12, 31),
            terms="e2e transfer scenarios",
        ),
        purpose=Purpose.NDC,
        deadline=datetime.now(UTC) + HOSTILE_PREPARE_DEADLINE,
    )


async def _send(world: World, envelope: Envelope, topic: str) -> RawRecord:
    record = RawRecord(
        topic=topic,
        partition=-1,
        offset=-1,
        key=str(envelope.transfer_id).encode(),
        value=envelope.model_dump_json().encode(),
        headers=(
            (MESSAGE_ID_HEADER, str(envelope.message_id).encode()),
            (MESSAGE_TYPE_HEADER, envelope.message_type.value.encode()),
        ),
    )
    (placed,) = await produce_placed(world.kafka_bootstrap, [record])
    return placed
