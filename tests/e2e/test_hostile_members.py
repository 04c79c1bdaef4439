"""A hostile member of the federation against three real node processes (issue 8, item 1).

The hostile member (``HOSTILE``) is a Party of the federation directory with its own
real Ed25519 key, but it runs no node: the tests play it on the bus with a plain
Kafka producer and consumer. It does what any member can do today: read another
node's inbox topic, and write validly signed records of its own to inboxes and to the
decision topic. It cannot sign for anyone else, so it reuses another coordinator's
transfer id under its own name, and replays other Parties' envelopes byte for byte.

A transfer is keyed by (transfer id, coordinator); every record of it, at every
node, must be too (PROTOCOL.md, invariant 7). What the tests require:

- a PREPARE that reuses the id of a transfer the receiver knows under another
  coordinator gets a NO vote with ``TRANSFER_ID_CLAIMED``, and one that reuses the
  id of a transfer already final there gets a NO with ``TRANSFER_ALREADY_FINAL``;
- the hostile member's own ABORT or COMMIT decides only its own transfer: the
  transfer it tried to hijack ends the same at both of its Parties;
- replayed envelopes of other Parties change nothing.

Every race is made deterministic by pausing node processes (SIGSTOP) so that the
hostile records land where the attack needs them: behind the victim's PREPARE on the
receiver's inbox, and on the decision topic before the victim's coordinator decides.
Each test ends with the federation-wide checks: atomicity (every transfer has one
status at both ends), no serial held twice, and conservation.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from a6wire.keys import generate_private_key
from a6wire.messages import Decision, Envelope, Outcome, Prepare, Vote, VoteChoice
from a6wire.signing import payload_digest, seal
from a6wire.topics import DECISION_TOPIC, decision_key, inbox_topic
from tests.e2e.helpers import (
    RawRecord,
    World,
    assert_conservation,
    assert_no_double_holding,
    assert_transfers_atomic,
    assert_unit_index_matches_ledgers,
    ca_entries,
    create_inbox_topic,
    end_offsets,
    holdings,
    issue,
    ledger_snapshot,
    marks_past,
    open_account,
    pause,
    paused,
    produce_placed,
    record_loa,
    records_of,
    register_approach,
    resume,
    run_transfer,
    running_federation,
    start_transfer,
    transfer_body,
    transfer_records,
    wait_for_record,
    wait_party_consumed,
    wait_status,
    wait_until,
)

# Party codes no other e2e module uses: consumer groups are named after the Party.
SENDER = "COL"  # the victim's coordinator
RECEIVER = "NZL"  # the victim's receiver, whose inbox the hostile member reads
BYSTANDER = "MAR"  # a third node, named in no attacked transfer
HOSTILE = "XHM"  # in the directory with its own key; runs no node
PARTIES = (SENDER, RECEIVER, BYSTANDER)

APPROACH = "CA0801"
LOA = "COL-LOA-0801"
VINTAGE = 2025

# The reason codes the receiver's NO vote must carry (issue 8, item 1).
TRANSFER_ID_CLAIMED = "TRANSFER_ID_CLAIMED"
TRANSFER_ALREADY_FINAL = "TRANSFER_ALREADY_FINAL"

# The victim's deadline when its coordinator must still be able to COMMIT after the
# attack: far beyond the few seconds the attack takes with the coordinator paused.
DEADLINE_COMMITTING_S = 120
# The victim's deadline when its coordinator must ABORT: the coordinator stays paused
# until it has passed. Long enough for the receiver to vote YES before it (checked),
# short because the test waits it out.
DEADLINE_ABORTING_S = 15
# The hostile member's own PREPAREs: a deadline the receiver accepts, so that the
# reused id is the only thing wrong with them.
HOSTILE_PREPARE_DEADLINE = timedelta(minutes=5)

MESSAGE_ID_HEADER = "message_id"
MESSAGE_TYPE_HEADER = "message_type"


def account(party: str, purpose: str) -> str:
    return f"{party}-{purpose}"


# ---------------------------------------------------------------- the hostile member


@dataclass(frozen=True)
class HostileMember:
    """A federation member played by the test: its own key, its own records, no node."""

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

    def prepare_reusing(self, theirs: Prepare) -> Prepare:
        """Its own PREPARE under another coordinator's transfer id: the same receiver,
        account and blocks, coordinated (and signed) by the hostile member."""
        fields = theirs.model_dump()
        fields.update(
            coordinator_party=self.party,
            from_registry_id=self.registry_id,
            from_account_id=account(self.party, "GOV"),
            deadline=datetime.now(UTC) + HOSTILE_PREPARE_DEADLINE,
        )
        return Prepare.model_validate(fields)

    def abort(self, prepare: Prepare) -> Decision:
        return Decision(
            transfer_id=prepare.transfer_id,
            outcome=Outcome.ABORT,
            decided_by=self.party,
            coordinator_party=self.party,
            participants=prepare.participants,
            prepare_digest=payload_digest(prepare),
            reason_codes=("CANCELLED_BY_COORDINATOR",),
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
            # Its own signed PREPARE, as a COMMIT must carry: only the transfer key is wrong.
            prepare=self.seal(prepare),
        )

    async def send(self, topic: str, payload: Prepare | Decision) -> RawRecord:
        """Sign and produce, keyed and with headers as a node writes its own records."""
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

    async def replay(self, records: list[RawRecord]) -> list[RawRecord]:
        return await produce_placed(self.bootstrap, records)


def _vote(record: RawRecord) -> Vote:
    vote = record.envelope().payload
    assert isinstance(vote, Vote), record.json()
    return vote


def _adjusted(world: World, transfer_id: str) -> int:
    """Units the sender's CA ledger adjusted for one transfer."""
    entries = ca_entries(world, SENDER)
    return sum(int(entry["quantity"]) for entry in entries if entry["transfer_id"] == transfer_id)


def _describe(vote: Vote) -> str:
    return f"{vote.vote.value} {list(vote.reason_codes)}"


@dataclass
class Findings:
    """Every way one attack went wrong, reported together: the harm (atomicity,
    double holding, conservation) first, then how the receiver answered."""

    failures: list[str] = field(default_factory=list)

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            self.failures.append(message)

    def run(self, check: Callable[[World], None], world: World) -> None:
        try:
            check(world)
        except AssertionError as error:
            self.failures.append(f"{check.__name__}: {error}")

    def federation_whole(self, world: World) -> None:
        for check in (
            assert_transfers_atomic,
            assert_no_double_holding,
            assert_conservation,
            assert_unit_index_matches_ledgers,
        ):
            self.run(check, world)

    def assert_none(self) -> None:
        if self.failures:
            pytest.fail("\n\n".join(self.failures), pytrace=False)


# ------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def hostile_key() -> Ed25519PrivateKey:
    return generate_private_key()


@pytest.fixture(scope="module")
async def world(
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
    hostile_key: Ed25519PrivateKey,
) -> AsyncIterator[World]:
    base_dir = tmp_path_factory.mktemp("hostile-members")
    with running_federation(
        kafka_bootstrap, base_dir, PARTIES, members_without_node={HOSTILE: hostile_key}
    ) as running:
        # The hostile member's inbox, where the receiver sends its votes on the
        # hostile PREPAREs (its node would have created it at start).
        await create_inbox_topic(kafka_bootstrap, HOSTILE)
        register_approach(running, APPROACH, PARTIES)
        record_loa(running, SENDER, LOA, APPROACH, (RECEIVER, BYSTANDER))
        yield running


@pytest.fixture
def hostile(world: World, hostile_key: Ed25519PrivateKey) -> HostileMember:
    return HostileMember(HOSTILE, hostile_key, world.kafka_bootstrap)


def _funded_accounts(world: World, purpose: str, quantity: int) -> dict[str, str]:
    """One new account per node for one scenario; ``quantity`` units issued to the sender's."""
    accounts = {party: account(party, purpose) for party in PARTIES}
    for party, account_id in accounts.items():
        open_account(world, party, account_id)
    issue(
        world,
        SENDER,
        accounts[SENDER],
        APPROACH,
        quantity,
        vintage=VINTAGE,
        authorisation_id=LOA,
    )
    return accounts


# ------------------------------------------------------------------ the in-flight claim


@dataclass(frozen=True)
class Claim:
    """The state of an in-flight attack: the victim's PREPARE and the hostile one were
    both handled by the receiver, the victim's coordinator is paused, undecided."""

    transfer_id: str
    victims_prepare: Prepare
    hostile_prepare: Prepare
    # The receiver's votes: to the victim's coordinator, and to the hostile member.
    vote_to_sender: RawRecord
    vote_to_hostile: RawRecord


async def _claim_in_flight(world: World, hostile: HostileMember, body: dict[str, Any]) -> Claim:
    """Start the victim's transfer and, in the same window, the hostile member's.

    The receiver is paused while the victim's PREPARE is produced; the hostile member
    reads it from the receiver's inbox and puts its own PREPARE (same id, itself as
    coordinator) right behind it on the same partition. The victim's coordinator is
    paused before the receiver resumes, so nothing is decided before the hostile
    member acts. Returns once the receiver has handled both PREPAREs and voted on
    each, with the victim's coordinator still paused: the caller resumes it.
    """
    bootstrap = world.kafka_bootstrap
    transfer_id = str(body["transfer_id"])
    receiver_inbox = await end_offsets(bootstrap, inbox_topic(RECEIVER))
    sender_inbox = await end_offsets(bootstrap, inbox_topic(SENDER))
    hostile_inbox = await end_offsets(bootstrap, hostile.inbox)
    pause(world, RECEIVER)
    try:
        start_transfer(world, SENDER, body)
        theirs = await wait_for_record(
            bootstrap, inbox_topic(RECEIVER), transfer_id, "PREPARE", since=receiver_inbox
        )
        pause(world, SENDER)
        victims_prepare = theirs.envelope().payload
        assert isinstance(victims_prepare, Prepare)
        hostile_prepare = hostile.prepare_reusing(victims_prepare)
        mine = await hostile.send(inbox_topic(RECEIVER), hostile_prepare)
        assert mine.partition == theirs.partition, "one key, one partition: the order is fixed"
        resume(world, RECEIVER)
        await wait_party_consumed(world, RECEIVER, marks_past([theirs, mine]))
        vote_to_sender = await wait_for_record(
            bootstrap, inbox_topic(SENDER), transfer_id, "VOTE", since=sender_inbox
        )
        vote_to_hostile = await wait_for_record(
            bootstrap, hostile.inbox, transfer_id, "VOTE", since=hostile_inbox
        )
    except BaseException:
        # On success the caller resumes the sender; on failure nobody stays paused.
        for party in (RECEIVER, SENDER):
            with contextlib.suppress(ProcessLookupError, AssertionError):
                resume(world, party)
        raise
    # The attack needs a transfer the receiver holds units for: it voted YES to the victim.
    assert _vote(vote_to_sender).vote is VoteChoice.YES, _describe(_vote(vote_to_sender))
    return Claim(transfer_id, victims_prepare, hostile_prepare, vote_to_sender, vote_to_hostile)


async def _decided_by_sender(world: World, transfer_id: str) -> dict[str, Any]:
    """Wait for the victim's coordinator to reach its outcome, then for the receiver
    to have handled that decision; returns the coordinator's view."""
    sender_view = wait_status(world, SENDER, transfer_id)
    decision = await wait_for_record(
        world.kafka_bootstrap, DECISION_TOPIC, transfer_id, "DECISION", sender=SENDER
    )
    await wait_party_consumed(world, RECEIVER, marks_past([decision]))
    return sender_view


def _check_same_outcome(
    findings: Findings,
    world: World,
    transfer_id: str,
    accounts: dict[str, str],
    quantity: int,
    issued: int,
    vote_to_hostile: Vote,
) -> None:
    """The victim's transfer ended the same at both of its Parties, and the ledgers
    show that outcome: credited and debited once if COMMITTED, untouched if ABORTED."""
    sender_record = transfer_records(world, SENDER).get((transfer_id, SENDER))
    receiver_record = transfer_records(world, RECEIVER).get((transfer_id, SENDER))
    statuses = (
        None if sender_record is None else sender_record["status"],
        None if receiver_record is None else receiver_record["status"],
    )
    findings.check(
        statuses[0] == statuses[1] and statuses[0] in ("COMMITTED", "ABORTED"),
        f"the hijacked transfer {transfer_id} ({SENDER} -> {RECEIVER}) ended "
        f"{statuses[0]} at {SENDER} and {statuses[1]} at {RECEIVER}; "
        f"{RECEIVER}'s vote to {HOSTILE} was {_describe(vote_to_hostile)}",
    )
    sender_held = holdings(world, SENDER, accounts[SENDER])
    receiver_held = holdings(world, RECEIVER, accounts[RECEIVER])
    committed = statuses[0] == "COMMITTED"
    expected = (issued - quantity, quantity) if committed else (issued, 0)
    findings.check(
        (sender_held, receiver_held) == expected,
        f"{SENDER} ended {statuses[0]}: expected {expected} held at ({SENDER}, {RECEIVER}), "
        f"found ({sender_held}, {receiver_held})",
    )
    adjusted = sum(
        e["quantity"] for e in ca_entries(world, SENDER) if e["transfer_id"] == transfer_id
    )
    findings.check(
        adjusted == (quantity if statuses[0] == "COMMITTED" else 0),
        f"{SENDER} ended {statuses[0]} and recorded {adjusted} units of adjustment for it",
    )


# -------------------------------------------------------------------------- scenarios


async def test_a_reused_in_flight_id_and_the_hostile_abort_leave_the_transfer_whole(
    world: World, hostile: HostileMember
) -> None:
    """The hostile member claims the id of an in-flight transfer, then ABORTs its own
    transfer before the real coordinator decides. Its ABORT must release nothing of
    the victim's: the victim commits at both ends."""
    issued, quantity = 900, 600
    accounts = _funded_accounts(world, "CLAIMABORT", issued)
    body = transfer_body(
        accounts[SENDER],
        RECEIVER,
        accounts[RECEIVER],
        quantity,
        LOA,
        deadline_s=DEADLINE_COMMITTING_S,
    )
    claim = await _claim_in_flight(world, hostile, body)
    try:
        placed = await hostile.send(DECISION_TOPIC, hostile.abort(claim.hostile_prepare))
        await wait_party_consumed(world, RECEIVER, marks_past([placed]))
    finally:
        resume(world, SENDER)
    await _decided_by_sender(world, claim.transfer_id)

    findings = Findings()
    vote = _vote(claim.vote_to_hostile)
    _check_same_outcome(findings, world, claim.transfer_id, accounts, quantity, issued, vote)
    findings.federation_whole(world)
    findings.check(
        vote.vote is VoteChoice.NO and TRANSFER_ID_CLAIMED in vote.reason_codes,
        f"{RECEIVER} answered {HOSTILE}'s PREPARE reusing {SENDER}'s in-flight id with "
        f"{_describe(vote)}, expected NO with {TRANSFER_ID_CLAIMED}",
    )
    findings.assert_none()


async def test_a_reused_in_flight_id_and_the_hostile_commit_credit_nothing(
    world: World, hostile: HostileMember
) -> None:
    """The hostile member claims the id of an in-flight transfer and COMMITs its own
    transfer with the best YES it can get (the receiver's YES to it, if given; else
    the receiver's YES to the real coordinator, read from that one's inbox). The real
    coordinator then passes its deadline and ABORTs: nothing may stay credited."""
    issued, quantity = 700, 450
    accounts = _funded_accounts(world, "CLAIMCOMMIT", issued)
    body = transfer_body(
        accounts[SENDER],
        RECEIVER,
        accounts[RECEIVER],
        quantity,
        LOA,
        deadline_s=DEADLINE_ABORTING_S,
    )
    claim = await _claim_in_flight(world, hostile, body)
    vote = _vote(claim.vote_to_hostile)
    try:
        evidence = claim.vote_to_hostile if vote.vote is VoteChoice.YES else claim.vote_to_sender
        commit = hostile.commit(claim.hostile_prepare, (evidence.envelope(),))
        placed = await hostile.send(DECISION_TOPIC, commit)
        await wait_party_consumed(world, RECEIVER, marks_past([placed]))
        deadline = claim.victims_prepare.deadline
        wait_until(
            lambda: True if datetime.now(UTC) > deadline else None,
            timeout_s=DEADLINE_ABORTING_S,
            what=f"the deadline of {claim.transfer_id} to pass with {SENDER} paused",
        )
    finally:
        resume(world, SENDER)
    sender_view = await _decided_by_sender(world, claim.transfer_id)
    assert sender_view["status"] == "ABORTED", f"past its deadline {SENDER} aborts: {sender_view}"

    findings = Findings()
    _check_same_outcome(findings, world, claim.transfer_id, accounts, quantity, issued, vote)
    findings.federation_whole(world)
    findings.check(
        vote.vote is VoteChoice.NO and TRANSFER_ID_CLAIMED in vote.reason_codes,
        f"{RECEIVER} answered {HOSTILE}'s PREPARE reusing {SENDER}'s in-flight id with "
        f"{_describe(vote)}, expected NO with {TRANSFER_ID_CLAIMED}",
    )
    findings.assert_none()


async def test_reusing_the_id_of_a_committed_transfer_gets_a_no_and_credits_nothing(
    world: World, hostile: HostileMember
) -> None:
    """The hostile member reuses the id of a transfer already COMMITTED at the receiver,
    then COMMITs its own with whatever YES it has. The receiver must vote NO without
    holding anything, and nothing anywhere changes."""
    issued, quantity = 300, 200
    accounts = _funded_accounts(world, "FINALID", issued)
    body = transfer_body(accounts[SENDER], RECEIVER, accounts[RECEIVER], quantity, LOA)
    transfer_id = body["transfer_id"]
    bootstrap = world.kafka_bootstrap
    receiver_inbox = await end_offsets(bootstrap, inbox_topic(RECEIVER))
    sender_inbox = await end_offsets(bootstrap, inbox_topic(SENDER))
    views = run_transfer(world, SENDER, body)
    assert [view["status"] for view in views] == ["COMMITTED", "COMMITTED"], views
    wait_status(world, SENDER, transfer_id, {"COMMITTED"}, completed=True)
    theirs = await wait_for_record(
        bootstrap, inbox_topic(RECEIVER), transfer_id, "PREPARE", since=receiver_inbox
    )
    yes_to_sender = await wait_for_record(
        bootstrap, inbox_topic(SENDER), transfer_id, "VOTE", since=sender_inbox
    )
    victims_prepare = theirs.envelope().payload
    assert isinstance(victims_prepare, Prepare)
    watched = {SENDER: [accounts[SENDER]], RECEIVER: [accounts[RECEIVER]]}
    before = ledger_snapshot(world, watched)
    records_before = {party: transfer_records(world, party) for party in PARTIES}

    hostile_inbox = await end_offsets(bootstrap, hostile.inbox)
    hostile_prepare = hostile.prepare_reusing(victims_prepare)
    mine = await hostile.send(inbox_topic(RECEIVER), hostile_prepare)
    await wait_party_consumed(world, RECEIVER, marks_past([mine]))
    answer = await wait_for_record(
        bootstrap, hostile.inbox, transfer_id, "VOTE", since=hostile_inbox
    )
    vote = _vote(answer)
    evidence = answer if vote.vote is VoteChoice.YES else yes_to_sender
    placed = await hostile.send(
        DECISION_TOPIC, hostile.commit(hostile_prepare, (evidence.envelope(),))
    )
    await wait_party_consumed(world, RECEIVER, marks_past([placed]))

    findings = Findings()
    findings.check(
        ledger_snapshot(world, watched) == before,
        f"a PREPARE and COMMIT reusing a committed id changed a ledger: "
        f"{before} became {ledger_snapshot(world, watched)}",
    )
    for party in (SENDER, RECEIVER):
        record = transfer_records(world, party)[(transfer_id, SENDER)]
        findings.check(
            record == records_before[party][(transfer_id, SENDER)],
            f"{party}'s record of {SENDER}'s transfer changed: {record}",
        )
    findings.check(
        holdings(world, RECEIVER, accounts[RECEIVER]) == quantity,
        f"{RECEIVER} holds {holdings(world, RECEIVER, accounts[RECEIVER])}, expected {quantity}",
    )
    findings.federation_whole(world)
    findings.check(
        vote.vote is VoteChoice.NO and TRANSFER_ALREADY_FINAL in vote.reason_codes,
        f"{RECEIVER} answered {HOSTILE}'s PREPARE reusing the id of a transfer COMMITTED "
        f"there with {_describe(vote)}, expected NO with {TRANSFER_ALREADY_FINAL}",
    )
    findings.assert_none()


async def test_replayed_envelopes_of_other_parties_change_nothing(
    world: World, hostile: HostileMember
) -> None:
    """The hostile member replays another transfer's PREPARE, VOTE, DECISION and DONE,
    validly signed by their senders, byte for byte: behind the original while it is
    in flight, then every record to every inbox and to the decision topic once the
    transfer is complete. The transfer commits once, and nothing changes afterwards."""
    issued, quantity = 500, 350
    accounts = _funded_accounts(world, "REPLAYED", issued)
    body = transfer_body(accounts[SENDER], RECEIVER, accounts[RECEIVER], quantity, LOA)
    transfer_id = body["transfer_id"]
    bootstrap = world.kafka_bootstrap
    topics = [inbox_topic(party) for party in PARTIES]
    since = {topic: await end_offsets(bootstrap, topic) for topic in [*topics, DECISION_TOPIC]}

    with paused(world, RECEIVER):
        start_transfer(world, SENDER, body)
        theirs = await wait_for_record(
            bootstrap, inbox_topic(RECEIVER), transfer_id, "PREPARE", since=since[topics[1]]
        )
        # In flight: the same PREPARE twice more behind the original, and to a bystander.
        early = await hostile.replay([theirs, theirs, theirs.to(inbox_topic(BYSTANDER))])
    for party in (RECEIVER, BYSTANDER):
        await wait_party_consumed(world, party, marks_past(early))
    wait_status(world, SENDER, transfer_id, {"COMMITTED"}, completed=True)
    wait_status(world, RECEIVER, transfer_id, {"COMMITTED"})

    # Each envelope its two Parties signed, once (the early replays are copies of one).
    originals: dict[bytes, RawRecord] = {}
    for topic in [*topics, DECISION_TOPIC]:
        for record in await records_of(bootstrap, topic, transfer_id, since=since[topic]):
            if record.sender_party in (SENDER, RECEIVER):
                originals.setdefault(record.value, record)
    kinds = {record.message_type for record in originals.values()}
    assert {"PREPARE", "VOTE", "DECISION", "DONE"} <= kinds, kinds
    watched = {SENDER: [accounts[SENDER]], RECEIVER: [accounts[RECEIVER]]}
    before = ledger_snapshot(world, watched)
    records_before = {party: transfer_records(world, party) for party in PARTIES}

    # Complete: every record of it to every inbox and to the decision topic.
    late = await hostile.replay(
        [record.to(topic) for record in originals.values() for topic in [*topics, DECISION_TOPIC]]
    )
    marks = marks_past(late)
    for party in PARTIES:
        await wait_party_consumed(world, party, marks)

    findings = Findings()
    findings.check(
        ledger_snapshot(world, watched) == before,
        f"replays changed a ledger: {before} became {ledger_snapshot(world, watched)}",
    )
    for party in PARTIES:
        records = transfer_records(world, party)
        findings.check(
            records == records_before[party],
            f"replays changed {party}'s transfer records: {records_before[party]} -> {records}",
        )
    findings.check(
        (transfer_id, SENDER) not in records_before[BYSTANDER],
        f"{BYSTANDER}, named in no PREPARE, recorded {SENDER}'s transfer {transfer_id}",
    )
    findings.check(
        (holdings(world, SENDER, accounts[SENDER]), holdings(world, RECEIVER, accounts[RECEIVER]))
        == (issued - quantity, quantity),
        f"the transfer of {quantity} did not move exactly once",
    )
    adjusted = sum(
        e["quantity"] for e in ca_entries(world, SENDER) if e["transfer_id"] == transfer_id
    )
    findings.check(adjusted == quantity, f"{SENDER} adjusted {adjusted} for {quantity} units")
    findings.federation_whole(world)
    findings.assert_none()
