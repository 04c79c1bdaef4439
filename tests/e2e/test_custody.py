"""Chain of custody at the receiver, from the federation's public records (issue 10, first slice).

A receiving node cannot see the sender's ledger. What it can see is public under
Article 6: every issuance, cancellation and use announced on the federation unit
log, and every committed transfer on the decision topic (each COMMIT carries the
coordinator's signed PREPARE). Each node folds them into its unit index and checks
a PREPARE against it before it votes YES (PROTOCOL.md invariant 8).

The hostile member (``HOSTILE``) is in the federation directory with its own real
key and runs no node: the test plays it on the bus. It sends a receiver PREPAREs,
validly signed by itself, for:

- serials nobody ever issued (units from nothing): NO with ``UNITS_NOT_ISSUED``;
- serials another Party holds (the same units in two registries): NO with
  ``UNITS_NOT_HELD_BY_SENDER``;
- serials that were cancelled: NO with ``UNITS_OUT_OF_CIRCULATION``.

Had the receiver voted YES, the hostile member would COMMIT with that vote, as it
could; the test does so, so that a YES shows up as a changed ledger as well. After
each attack nothing has changed at any honest node, and the federation-wide checks
hold, including that every node's unit index equals the union of the ledgers.

``LATE`` joins late: its node is stopped right after the federation starts, before
anything is issued, and started again once units were issued, moved and cancelled
elsewhere. It builds its index from the logs, and a transfer to it of units issued
before it came back commits (and the hostile PREPAREs above are refused by it too).

``NEWCOMER`` is a new Party: in the directory from the start, but its node never ran
before the issuance, the transfer and the cancellation. It starts on an empty
database, so its unit index has no offsets and reads both logs from offset 0; then it
refuses the hostile PREPAREs for serials issued before it existed (held by another
Party, or never issued) with their custody reason codes, and accepts an honest one.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from a6wire.keys import generate_private_key
from a6wire.messages import (
    AuthorisationSnapshot,
    Decision,
    Envelope,
    Outcome,
    Prepare,
    Purpose,
    SerialBlock,
    Vote,
    VoteChoice,
)
from a6wire.signing import payload_digest, seal
from a6wire.topics import DECISION_TOPIC, decision_key, inbox_topic
from tests.e2e.helpers import (
    ACTIVITY_TYPE,
    GWP_VALUES,
    METRIC,
    MITIGATION_TYPE,
    SECTOR,
    RawRecord,
    World,
    assert_conservation,
    assert_no_double_holding,
    assert_transfers_atomic,
    assert_unit_index_matches_ledgers,
    call,
    create_inbox_topic,
    end_offsets,
    holdings,
    issue,
    ledger_snapshot,
    marks_past,
    open_account,
    produce_placed,
    record_loa,
    register_approach,
    run_transfer,
    running_federation,
    transfer_body,
    wait_for_record,
    wait_party_consumed,
)

# Party codes no other e2e module uses: consumer groups are named after the Party.
SENDER = "ISL"
RECEIVER = "VNM"
BYSTANDER = "PRY"
LATE = "ECU"
NEWCOMER = "NAM"
HOSTILE = "XCU"
PARTIES = (SENDER, RECEIVER, BYSTANDER, LATE, NEWCOMER)
# Whom the SENDER's LoA authorises (as recorded, and as its PREPAREs carry it).
AUTHORISED = (RECEIVER, BYSTANDER, LATE, NEWCOMER)

APPROACH = "CA1001"
LOA = "ISL-LOA-1001"
HOSTILE_LOA = "XCU-LOA-1001"
VINTAGE = 2025
LOA_DATE = date(2024, 1, 15)
HOSTILE_PREPARE_DEADLINE = timedelta(minutes=5)
# Serials the hostile member claims out of nothing, in its own registry's numbering.
NEVER_ISSUED = (1, 250)
# What the BYSTANDER moves on to the new Party (it got 300 and moves 120 to LATE).
NEWCOMER_UNITS = 80

UNITS_NOT_ISSUED = "UNITS_NOT_ISSUED"
UNITS_NOT_HELD_BY_SENDER = "UNITS_NOT_HELD_BY_SENDER"
UNITS_OUT_OF_CIRCULATION = "UNITS_OUT_OF_CIRCULATION"

MESSAGE_ID_HEADER = "message_id"
MESSAGE_TYPE_HEADER = "message_type"


def account(party: str, purpose: str) -> str:
    return f"{party}-{purpose}"


@dataclass(frozen=True)
class HostileMember:
    party: str
    key: Ed25519PrivateKey
    bootstrap: str

    @property
    def registry_id(self) -> str:
        return f"{self.party}01"

    @property
    def inbox(self) -> str:
        return inbox_topic(self.party)

    def seal(self, payload: Prepare | Decision) -> Envelope:
        return seal(
            payload,
            sender_party=self.party,
            sent_at=datetime.now(UTC),
            message_id=uuid.uuid4(),
            private_key=self.key,
        )

    def prepare(
        self,
        to_party: str,
        to_account_id: str,
        blocks: list[SerialBlock],
        authorisation: AuthorisationSnapshot,
    ) -> Prepare:
        return Prepare(
            transfer_id=uuid.uuid4(),
            coordinator_party=self.party,
            participants=(to_party,),
            from_registry_id=self.registry_id,
            from_account_id=account(self.party, "GOV"),
            to_registry_id=f"{to_party}01",
            to_account_id=to_account_id,
            blocks=tuple(blocks),
            authorisation=authorisation,
            purpose=Purpose.NDC,
            deadline=datetime.now(UTC) + HOSTILE_PREPARE_DEADLINE,
        )

    def commit(self, prepare: Prepare, yes_votes: tuple[Envelope, ...]) -> Decision:
        return Decision(
            transfer_id=prepare.transfer_id,
            outcome=Outcome.COMMIT,
            decided_by=self.party,
            coordinator_party=self.party,
            participants=prepare.participants,
            prepare_digest=payload_digest(prepare),
            yes_votes=yes_votes,
            prepare=self.seal(prepare),
        )

    async def send(self, topic: str, payload: Prepare | Decision) -> RawRecord:
        envelope = self.seal(payload)
        transfer_id = str(envelope.transfer_id)
        record = RawRecord(
            topic=topic,
            partition=-1,
            offset=-1,
            key=decision_key(transfer_id) if topic == DECISION_TOPIC else transfer_id.encode(),
            value=envelope.model_dump_json().encode(),
            headers=(
                (MESSAGE_ID_HEADER, str(envelope.message_id).encode()),
                (MESSAGE_TYPE_HEADER, envelope.message_type.value.encode()),
            ),
        )
        (placed,) = await produce_placed(self.bootstrap, [record])
        return placed


def block(
    first: int,
    last: int,
    registry_id: str,
    first_transferring_party: str,
    authorisation_id: str,
) -> SerialBlock:
    return SerialBlock(
        first_serial=first,
        last_serial=last,
        quantity=last - first + 1,
        cooperative_approach_id=APPROACH,
        originating_registry_id=registry_id,
        first_transferring_party=first_transferring_party,
        vintage=VINTAGE,
        metric=METRIC,
        gwp=GWP_VALUES,
        mitigation_type=MITIGATION_TYPE,
        sector=SECTOR,
        activity_type=ACTIVITY_TYPE,
        first_transfer_done=False,
        authorisation_id=authorisation_id,
        authorisation_version=1,
    )


def authorisation(authorisation_id: str, authorised: tuple[str, ...]) -> AuthorisationSnapshot:
    """As ``helpers.record_loa`` records it."""
    return AuthorisationSnapshot(
        authorisation_id=authorisation_id,
        authorisation_date=LOA_DATE,
        cooperative_approach_id=APPROACH,
        version=1,
        authorised_parties=authorised,
        purposes=(Purpose.NDC,),
        mitigation_from=date(2021, 1, 1),
        mitigation_to=date(2030, 12, 31),
        use_from=date(2021, 1, 1),
        use_to=date(2035, 12, 31),
        terms="e2e transfer scenarios",
    )


def serial(identifier: str) -> int:
    """The serial number in a 6/CMA.4 unique identifier (approach-registry-party-serial-vintage)."""
    return int(identifier.split("-")[3])


# ------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def hostile_key() -> Ed25519PrivateKey:
    return generate_private_key()


@dataclass
class Scene:
    world: World
    hostile: HostileMember
    # First and last serial of the SENDER's issuance, of what it moved to the
    # BYSTANDER, and of what it cancelled, all before LATE came back.
    issued: tuple[int, int]
    moved: tuple[int, int]
    cancelled: tuple[int, int]


@pytest.fixture(scope="module")
async def scene(
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
    hostile_key: Ed25519PrivateKey,
) -> AsyncIterator[Scene]:
    base_dir = tmp_path_factory.mktemp("custody")
    with running_federation(
        kafka_bootstrap,
        base_dir,
        PARTIES,
        members_without_node={HOSTILE: hostile_key},
        started_later={NEWCOMER},
    ) as world:
        await create_inbox_topic(kafka_bootstrap, HOSTILE)
        # LATE leaves before anything is issued: what follows it learns from the logs.
        world.federation.kill(LATE, signal.SIGTERM)
        register_approach(
            world, APPROACH, (*PARTIES, HOSTILE), register_at=(SENDER, RECEIVER, BYSTANDER)
        )
        record_loa(world, SENDER, LOA, APPROACH, AUTHORISED)
        for party in (SENDER, RECEIVER, BYSTANDER):
            open_account(world, party, account(party, "MAIN"))
        (issued,) = issue(
            world,
            SENDER,
            account(SENDER, "MAIN"),
            APPROACH,
            1_000,
            vintage=VINTAGE,
            authorisation_id=LOA,
        )
        views = run_transfer(
            world,
            SENDER,
            transfer_body(account(SENDER, "MAIN"), BYSTANDER, account(BYSTANDER, "MAIN"), 300, LOA),
        )
        assert [view["status"] for view in views] == ["COMMITTED", "COMMITTED"], views
        (moved,) = views[1]["blocks"]
        (cancelled,) = call(
            world.node(SENDER),
            "POST",
            "/v1/cancellations",
            json={"account_id": account(SENDER, "MAIN"), "quantity": 100, "kind": "VOLUNTARY"},
        )["blocks"]
        world.federation.restart(LATE)
        # The new Party's node runs for the first time, on the database `init` made.
        world.federation.restart(NEWCOMER)
        register_approach(world, APPROACH, (*PARTIES, HOSTILE), register_at=(LATE, NEWCOMER))
        for party in (LATE, NEWCOMER):
            open_account(world, party, account(party, "MAIN"))
        yield Scene(
            world,
            HostileMember(HOSTILE, hostile_key, kafka_bootstrap),
            (int(issued["first_serial"]), int(issued["last_serial"])),
            (serial(moved["first_identifier"]), serial(moved["last_identifier"])),
            (int(cancelled["first_serial"]), int(cancelled["last_serial"])),
        )


# ------------------------------------------------------------------------- the checks


def _everything(world: World) -> dict[str, Any]:
    return ledger_snapshot(world, {party: [account(party, "MAIN")] for party in PARTIES})


async def _attack(scene: Scene, to_party: str, prepare: Prepare) -> Vote:
    """Send the hostile PREPARE; COMMIT with the answer if it was a YES; return the vote."""
    world, hostile = scene.world, scene.hostile
    since = await end_offsets(world.kafka_bootstrap, hostile.inbox)
    placed = await hostile.send(inbox_topic(to_party), prepare)
    await wait_party_consumed(world, to_party, marks_past([placed]))
    answer = await wait_for_record(
        world.kafka_bootstrap, hostile.inbox, str(prepare.transfer_id), "VOTE", since=since
    )
    vote = answer.envelope().payload
    assert isinstance(vote, Vote), answer.json()
    if vote.vote is VoteChoice.YES:
        # What any member does with a YES: commit, and the receiver credits.
        decided = await hostile.send(DECISION_TOPIC, hostile.commit(prepare, (answer.envelope(),)))
        await wait_party_consumed(world, to_party, marks_past([decided]))
    return vote


def _assert_refused_and_harmless(
    scene: Scene, vote: Vote, reason: str, before: dict[str, Any], what: str
) -> None:
    failures: list[str] = []
    if not (vote.vote is VoteChoice.NO and reason in vote.reason_codes):
        failures.append(
            f"{what}: answered {vote.vote.value} {list(vote.reason_codes)}, "
            f"expected NO with {reason}"
        )
    after = _everything(scene.world)
    if after != before:
        failures.append(f"{what}: an honest ledger changed: {before} became {after}")
    for check in (
        assert_transfers_atomic,
        assert_no_double_holding,
        assert_conservation,
        assert_unit_index_matches_ledgers,
    ):
        try:
            check(scene.world)
        except AssertionError as error:
            failures.append(f"{what}: {check.__name__}: {error}")
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


# -------------------------------------------------------------------------- scenarios


@pytest.mark.parametrize("receiver", [RECEIVER, LATE, NEWCOMER])
async def test_never_issued_serials_get_a_no_and_credit_nothing(
    scene: Scene, receiver: str
) -> None:
    hostile = scene.hostile
    before = _everything(scene.world)
    prepare = hostile.prepare(
        receiver,
        account(receiver, "MAIN"),
        [block(*NEVER_ISSUED, hostile.registry_id, HOSTILE, HOSTILE_LOA)],
        authorisation(HOSTILE_LOA, (receiver,)),
    )
    vote = await _attack(scene, receiver, prepare)
    _assert_refused_and_harmless(
        scene, vote, UNITS_NOT_ISSUED, before, f"{HOSTILE}'s never-issued serials to {receiver}"
    )


@pytest.mark.parametrize("receiver", [RECEIVER, LATE, NEWCOMER])
async def test_serials_another_party_holds_get_a_no_and_credit_nothing(
    scene: Scene, receiver: str
) -> None:
    """The serials the SENDER holds, and those the BYSTANDER holds, claimed by HOSTILE."""
    hostile = scene.hostile
    sender_registry = f"{SENDER}01"
    held_by_sender = (scene.issued[0], scene.issued[0] + 49)
    assert held_by_sender[1] < scene.cancelled[0]
    assert held_by_sender[1] < scene.moved[0]
    for first, last in (held_by_sender, scene.moved):
        before = _everything(scene.world)
        prepare = hostile.prepare(
            receiver,
            account(receiver, "MAIN"),
            [block(first, last, sender_registry, SENDER, LOA)],
            authorisation(LOA, AUTHORISED),
        )
        vote = await _attack(scene, receiver, prepare)
        _assert_refused_and_harmless(
            scene,
            vote,
            UNITS_NOT_HELD_BY_SENDER,
            before,
            f"{HOSTILE}'s claim to {SENDER}01 serials {first}-{last} to {receiver}",
        )


async def test_cancelled_serials_get_a_no(scene: Scene) -> None:
    hostile = scene.hostile
    before = _everything(scene.world)
    prepare = hostile.prepare(
        RECEIVER,
        account(RECEIVER, "MAIN"),
        [block(*scene.cancelled, f"{SENDER}01", SENDER, LOA)],
        authorisation(LOA, AUTHORISED),
    )
    vote = await _attack(scene, RECEIVER, prepare)
    _assert_refused_and_harmless(
        scene, vote, UNITS_OUT_OF_CIRCULATION, before, f"{HOSTILE}'s cancelled serials"
    )


async def test_a_late_party_checks_custody_of_units_issued_before_it_joined(
    scene: Scene,
) -> None:
    """LATE was away for the issuance, the transfer and the cancellation: its index,
    read from the logs, lets it accept units the BYSTANDER really holds."""
    world = scene.world
    views = run_transfer(
        world,
        BYSTANDER,
        transfer_body(account(BYSTANDER, "MAIN"), LATE, account(LATE, "MAIN"), 120, LOA),
    )
    assert [view["status"] for view in views] == ["COMMITTED", "COMMITTED"], views
    assert holdings(world, LATE, account(LATE, "MAIN")) == 120
    assert_unit_index_matches_ledgers(world)


async def test_a_new_party_reads_the_logs_from_the_start_and_accepts_units_held_elsewhere(
    scene: Scene,
) -> None:
    """NEWCOMER's node first ran after the issuance, the transfer and the cancellation:
    everything its index knows it read from the logs, from offset 0. Units the
    BYSTANDER holds since before NEWCOMER existed move to it."""
    world = scene.world
    views = run_transfer(
        world,
        BYSTANDER,
        transfer_body(
            account(BYSTANDER, "MAIN"), NEWCOMER, account(NEWCOMER, "MAIN"), NEWCOMER_UNITS, LOA
        ),
    )
    assert [view["status"] for view in views] == ["COMMITTED", "COMMITTED"], views
    assert holdings(world, NEWCOMER, account(NEWCOMER, "MAIN")) == NEWCOMER_UNITS
    assert_unit_index_matches_ledgers(world)
