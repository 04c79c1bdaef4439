"""Hostile federation members: real keys, real directory entries, no registry node.

Each attack is one scheduled event of a seed. A hostile member sees every
record on the bus (it may read the decision topic and capture traffic) and
may write to any inbox and to the decision topic, as PROTOCOL.md invariant 7
allows. The attacks:

- ``reuse_id``: its own PREPARE (coordinator: itself) with the id of an honest
  transfer, in flight or finished, sent to that transfer's receiver or
  coordinator; if it gets a YES it appends its own COMMIT (with that YES) or
  ABORT, either validly signed by itself.
- ``foreign_serials``: its own PREPARE, fresh id, for serials it does not hold
  (they are held by an honest node), with a genuine LoA snapshot copied from
  the traffic; a YES is followed by its COMMIT.
- ``never_issued``: the same, for serials nobody ever issued: past the last
  serial an honest registry issued, straddling it, or in the attacker's own
  registry, which never announced an issuance.
- ``unit_log``: on the federation unit log, an honest registry's record again,
  byte for byte; one altered (another range) and signed in its name with a
  wrong key; or an issuance of an honest registry's serials signed by itself.
- ``replay_vote``, ``replay_decision``: other transfers' votes and decisions,
  byte for byte or re-used as evidence in its own records.
- ``forged_signature``: records in an honest Party's name signed with a wrong
  key, and a PREPARE from outside the federation.
- ``wrong_role``: validly signed by itself, in a role it does not have.
- ``malformed``: bytes that are not a record, or a record altered after signing,
  to an inbox or the decision topic.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from a6wire.messages import (
    Decision,
    Done,
    DoneOutcome,
    Envelope,
    Outcome,
    Prepare,
    SerialBlock,
    UnitRecord,
    Vote,
    VoteChoice,
)
from a6wire.signing import payload_digest, seal
from a6wire.verification import decode_envelope, encode_envelope
from registry.protocol.arbiter import TransferKey
from tests.sim import factories

if TYPE_CHECKING:
    from tests.sim.world import Simulation, TransferTruth

FORGER_SALT = "forger"
HOSTILE_DECISION_DELAY_MAX_MS = 3_000
HOSTILE_DEADLINE_MIN_S = 2
HOSTILE_DEADLINE_MAX_S = 15
MALFORMED_BYTES_MAX = 64
NEVER_ISSUED_LENGTH_MAX = 5

ATTACKS = (
    "reuse_id",
    "reuse_id",  # twice as likely: the attack a transfer key must make harmless
    "foreign_serials",
    "never_issued",
    "unit_log",
    "replay_vote",
    "replay_decision",
    "forged_signature",
    "wrong_role",
    "malformed",
)


def _seal(sim: Simulation, payload: object, sender: str, key: Ed25519PrivateKey) -> Envelope:
    return seal(
        payload,  # type: ignore[arg-type]
        sender_party=sender,
        sent_at=factories.at(sim.time_ms),
        message_id=uuid.UUID(int=sim.rng.getrandbits(128), version=4),
        private_key=key,
    )


def _own_key(party: str) -> Ed25519PrivateKey:
    return factories.party_key(party)


def _wrong_key(party: str) -> Ed25519PrivateKey:
    return factories.party_key(party, FORGER_SALT)


def _send(sim: Simulation, party: str, envelope: Envelope | bytes) -> None:
    data = envelope if isinstance(envelope, bytes) else encode_envelope(envelope)
    sim.publish_inbox(party, data, faulty=False)


def _append(sim: Simulation, envelope: Envelope | bytes, delay_ms: int = 0) -> None:
    data = envelope if isinstance(envelope, bytes) else encode_envelope(envelope)
    sim.schedule(sim.time_ms + delay_ms, "hostile_decide", ("", data))


def _known(sim: Simulation) -> list[TransferTruth]:
    return [truth for truth in sim.transfers.values() if truth.prepare is not None]


def _captured(sim: Simulation, kind: type) -> list[Envelope]:
    found = []
    for data in sim.captured:
        try:
            envelope = decode_envelope(data)
        except Exception:
            continue
        if isinstance(envelope.payload, kind):
            found.append(envelope)
    return found


def _own_prepare(
    sim: Simulation, attacker: str, template: Prepare, target: str, **update: object
) -> Prepare:
    """A PREPARE of the attacker's own, built from an honest one it saw on the bus."""
    node = sim.nodes[target]
    seconds = sim.rng.randint(HOSTILE_DEADLINE_MIN_S, HOSTILE_DEADLINE_MAX_S)
    values: dict[str, object] = {
        "coordinator_party": attacker,
        "participants": (target,),
        "from_registry_id": factories.registry_of(attacker),
        "from_account_id": factories.account_of(attacker),
        "to_registry_id": node.registry_id,
        "to_account_id": node.account_id,
        "deadline": factories.at(sim.time_ms + seconds * 1000),
    }
    values.update(update)
    return Prepare.model_validate({**template.model_dump(), **values})


def _prepare_and_await(sim: Simulation, attacker: str, prepare: Prepare, target: str) -> None:
    """Send the PREPARE; the attacker decides when (if) the target's vote comes back."""
    envelope = _seal(sim, prepare, attacker, _own_key(attacker))
    outcome = Outcome.COMMIT if sim.rng.random() < 0.5 else Outcome.ABORT
    sim.hostile_plans[TransferKey(prepare.transfer_id, attacker)] = (envelope, outcome)
    _send(sim, target, envelope)
    if outcome is Outcome.ABORT and sim.rng.random() < 0.3:
        _decide(sim, attacker, envelope, Outcome.ABORT, ())  # without waiting for the vote


def _decide(
    sim: Simulation,
    attacker: str,
    prepare_envelope: Envelope,
    outcome: Outcome,
    yes_votes: tuple[Envelope, ...],
) -> None:
    prepare = prepare_envelope.payload
    assert isinstance(prepare, Prepare)
    decision = Decision(
        transfer_id=prepare.transfer_id,
        outcome=outcome,
        decided_by=attacker,
        coordinator_party=attacker,
        participants=prepare.participants,
        prepare_digest=payload_digest(prepare),
        yes_votes=yes_votes if outcome is Outcome.COMMIT else (),
        # Well formed, as a COMMIT must be to count: it carries its signed PREPARE.
        prepare=prepare_envelope,
    )
    delay = sim.rng.randint(1, HOSTILE_DECISION_DELAY_MAX_MS)
    _append(sim, _seal(sim, decision, attacker, _own_key(attacker)), delay)


def on_inbox(sim: Simulation, attacker: str, data: bytes) -> None:
    """A record an honest node sent to a hostile member: a vote on its PREPARE."""
    envelope = decode_envelope(data)
    vote = envelope.payload
    if not isinstance(vote, Vote) or vote.vote is not VoteChoice.YES:
        return
    plan = sim.hostile_plans.pop(TransferKey(vote.transfer_id, attacker), None)
    if plan is not None:
        prepare_envelope, outcome = plan
        _decide(sim, attacker, prepare_envelope, outcome, (envelope,))


def attack(sim: Simulation, name: str) -> None:
    attacker = sim.rng.choice(sim.hostile)
    # A record the wire model will not even build is skipped; ``malformed`` sends such bytes.
    with contextlib.suppress(ValidationError):
        globals()[f"_{name}"](sim, attacker)


def _reuse_id(sim: Simulation, attacker: str) -> None:
    known = _known(sim)
    if not known:
        return
    truth = sim.rng.choice(known)
    assert truth.prepare is not None
    target = truth.receiver if sim.rng.random() < 0.8 else truth.key.coordinator_party
    prepare = _own_prepare(sim, attacker, truth.prepare, target)
    _prepare_and_await(sim, attacker, prepare, target)


def _foreign_serials(sim: Simulation, attacker: str) -> None:
    known = _known(sim)
    if not known:
        return
    template = sim.rng.choice(known).prepare
    assert template is not None
    origin = template.blocks[0].originating_registry_id
    serials = sorted(serial for registry, serial in sim.issued if registry == origin)
    first = sim.rng.choice(serials)
    last = first
    while last + 1 in serials and last - first < 4 and sim.rng.random() < 0.7:
        last += 1
    block: SerialBlock = template.blocks[0].model_copy(
        update={"first_serial": first, "last_serial": last, "quantity": last - first + 1}
    )
    target = sim.rng.choice(sim.parties)
    transfer_id = uuid.UUID(int=sim.rng.getrandbits(128), version=4)
    prepare = _own_prepare(
        sim, attacker, template, target, transfer_id=transfer_id, blocks=(block,)
    )
    _prepare_and_await(sim, attacker, prepare, target)


def _never_issued(sim: Simulation, attacker: str) -> None:
    known = _known(sim)
    if not known:
        return
    template = sim.rng.choice(known).prepare
    assert template is not None
    honest = template.blocks[0]
    origin = honest.originating_registry_id
    issued_max = max(serial for registry, serial in sim.issued if registry == origin)
    choice = sim.rng.randrange(3)
    length = sim.rng.randint(1, NEVER_ISSUED_LENGTH_MAX)
    update: dict[str, object] = {}
    if choice == 0:  # past the last serial the origin issued
        first = issued_max + sim.rng.randint(1, NEVER_ISSUED_LENGTH_MAX)
    elif choice == 1:  # the origin's last serials and some it never issued
        first = max(1, issued_max - length + 2)
    else:  # in its own registry, which issued nothing the log knows of
        first = sim.rng.randint(1, NEVER_ISSUED_LENGTH_MAX)
        update = {
            "originating_registry_id": factories.registry_of(attacker),
            "first_transferring_party": attacker,
        }
    last = first + length - 1
    block: SerialBlock = honest.model_copy(
        update={"first_serial": first, "last_serial": last, "quantity": length, **update}
    )
    target = sim.rng.choice(sim.parties)
    transfer_id = uuid.UUID(int=sim.rng.getrandbits(128), version=4)
    prepare = _own_prepare(
        sim, attacker, template, target, transfer_id=transfer_id, blocks=(block,)
    )
    _prepare_and_await(sim, attacker, prepare, target)


def _unit_log(sim: Simulation, attacker: str) -> None:
    rng = sim.rng
    if not sim.unit_log:
        return
    data = rng.choice(sim.unit_log).data
    choice = rng.randrange(3)
    if choice == 0:  # byte for byte: the index folded it in once already
        _append_unit(sim, data)
        return
    honest = decode_envelope(data)
    record = honest.payload
    assert isinstance(record, UnitRecord)
    shift = rng.randint(1, NEVER_ISSUED_LENGTH_MAX)
    moved = record.model_copy(
        update={
            "first_serial": record.first_serial + shift,
            "last_serial": record.last_serial + shift,
        }
    )
    if choice == 1:  # in the honest Party's name, with a key that is not its own
        party = honest.sender_party
        _append_unit(sim, _seal(sim, moved, party, _wrong_key(party)))
    else:  # an issuance of another registry's serials, validly signed by itself
        _append_unit(
            sim,
            _seal(sim, moved.model_copy(update={"party": attacker}), attacker, _own_key(attacker)),
        )


def _append_unit(sim: Simulation, envelope: Envelope | bytes) -> None:
    data = envelope if isinstance(envelope, bytes) else encode_envelope(envelope)
    sim.schedule(sim.time_ms, "hostile_unit_record", (data,))


def _replay_vote(sim: Simulation, attacker: str) -> None:
    votes = _captured(sim, Vote)
    if not votes:
        return
    vote = sim.rng.choice(votes)
    choice = sim.rng.randrange(3)
    if choice == 0:  # byte for byte, to another coordinator
        _send(sim, sim.rng.choice(sim.parties), vote)
        return
    payload = vote.payload
    assert isinstance(payload, Vote)
    if choice == 1:  # the vote as evidence of the attacker's own COMMIT under that id
        decision = Decision(
            transfer_id=payload.transfer_id,
            outcome=Outcome.COMMIT,
            decided_by=attacker,
            coordinator_party=attacker,
            participants=(vote.sender_party,),
            prepare_digest=payload.prepare_digest,
            yes_votes=(vote,),
        )
        _append(sim, _seal(sim, decision, attacker, _own_key(attacker)))
        return
    # Another transfer's YES stapled to an honest transfer's COMMIT, signed by the attacker.
    known = _known(sim)
    if not known:
        return
    truth = sim.rng.choice(known)
    assert truth.prepare is not None
    decision = Decision(
        transfer_id=truth.key.transfer_id,
        outcome=Outcome.COMMIT,
        decided_by=truth.key.coordinator_party,
        coordinator_party=truth.key.coordinator_party,
        participants=truth.prepare.participants,
        prepare_digest=payload_digest(truth.prepare),
        yes_votes=(vote,),
    )
    _append(sim, _seal(sim, decision, attacker, _own_key(attacker)))


def _replay_decision(sim: Simulation, attacker: str) -> None:
    decisions = _captured(sim, Decision)
    if not decisions:
        return
    record = sim.rng.choice(decisions)
    choice = sim.rng.randrange(3)
    if choice == 0:  # byte for byte, on the decision topic again
        _append(sim, record)
    elif choice == 1:  # byte for byte, to an inbox
        _send(sim, sim.rng.choice(sim.parties), record)
    else:  # its payload re-signed by the attacker, for another transfer it names itself in
        payload = record.payload
        assert isinstance(payload, Decision)
        try:
            reused = Decision.model_validate(
                {**payload.model_dump(), "coordinator_party": attacker, "decided_by": attacker}
            )
        except ValidationError:
            return  # a record the wire model will not even build; malformed covers those
        _append(sim, _seal(sim, reused, attacker, _own_key(attacker)))


def _forged_signature(sim: Simulation, attacker: str) -> None:
    rng = sim.rng
    known = _known(sim)
    if not known:
        return
    choice = rng.randrange(4)
    if choice == 0:  # a PREPARE in an honest Party's name (or a stranger's), wrong key
        truth = rng.choice(known)
        assert truth.prepare is not None
        claimed = rng.choice([*sim.parties, "XXX"])
        target = rng.choice([p for p in sim.parties if p != claimed] or sim.parties)
        prepare = _own_prepare(
            sim,
            claimed,
            truth.prepare,
            target,
            transfer_id=uuid.UUID(int=rng.getrandbits(128), version=4),
        )
        _send(sim, target, _seal(sim, prepare, claimed, _wrong_key(claimed)))
        return
    truth = rng.choice(known)
    real = truth.prepare
    assert real is not None
    coordinator = truth.key.coordinator_party
    digest = payload_digest(real)
    votes = tuple(
        _seal(
            sim,
            Vote(
                transfer_id=real.transfer_id,
                coordinator_party=coordinator,
                prepare_digest=digest,
                vote=VoteChoice.YES,
            ),
            party,
            _wrong_key(party),
        )
        for party in real.participants
    )
    if choice == 1:  # a YES in a participant's name
        _send(sim, coordinator, votes[0])
    elif choice == 2:  # a COMMIT in the coordinator's name
        commit = Decision(
            transfer_id=real.transfer_id,
            outcome=Outcome.COMMIT,
            decided_by=coordinator,
            coordinator_party=coordinator,
            participants=real.participants,
            prepare_digest=digest,
            yes_votes=votes,
        )
        _append(sim, _seal(sim, commit, coordinator, _wrong_key(coordinator)))
    else:  # an ABORT in the coordinator's name
        abort = Decision(
            transfer_id=real.transfer_id,
            outcome=Outcome.ABORT,
            decided_by=coordinator,
            coordinator_party=coordinator,
            participants=real.participants,
            prepare_digest=digest,
        )
        _append(sim, _seal(sim, abort, coordinator, _wrong_key(coordinator)))


def _wrong_role(sim: Simulation, attacker: str) -> None:
    rng = sim.rng
    known = _known(sim)
    if not known:
        return
    truth = rng.choice(known)
    real = truth.prepare
    assert real is not None
    coordinator = truth.key.coordinator_party
    digest = payload_digest(real)
    key = _own_key(attacker)
    choice = rng.randrange(5)
    if choice == 0:  # a COMMIT of another coordinator's transfer, signed by itself
        real_votes = [
            vote
            for vote in _captured(sim, Vote)
            if vote.transfer_id == real.transfer_id
            and isinstance(vote.payload, Vote)
            and vote.payload.vote is VoteChoice.YES
        ]
        commit = Decision(
            transfer_id=real.transfer_id,
            outcome=Outcome.COMMIT,
            decided_by=coordinator,
            coordinator_party=coordinator,
            participants=real.participants,
            prepare_digest=digest,
            yes_votes=tuple(real_votes[:1]),
        )
        _append(sim, _seal(sim, commit, attacker, key))
    elif choice == 1:  # claims to be a participant and aborts, with a PREPARE it signed
        fake_prepare = _seal(sim, real, attacker, key)
        abort = Decision(
            transfer_id=real.transfer_id,
            outcome=Outcome.ABORT,
            decided_by=attacker,
            coordinator_party=coordinator,
            participants=(*real.participants, attacker),
            prepare_digest=digest,
            prepare=fake_prepare,
        )
        _append(sim, _seal(sim, abort, attacker, key))
    elif choice == 2:  # a YES from a Party that is not a participant
        vote = Vote(
            transfer_id=real.transfer_id,
            coordinator_party=coordinator,
            prepare_digest=digest,
            vote=VoteChoice.YES,
        )
        _send(sim, coordinator, _seal(sim, vote, attacker, key))
    elif choice == 3:  # a DONE from a Party that is not a participant
        done = Done(
            transfer_id=real.transfer_id,
            coordinator_party=coordinator,
            outcome=rng.choice(list(DoneOutcome)),
        )
        _send(sim, coordinator, _seal(sim, done, attacker, key))
    else:  # the honest PREPARE re-signed by itself, sent to the receiver
        _send(sim, truth.receiver, _seal(sim, real, attacker, key))


def _malformed(sim: Simulation, attacker: str) -> None:
    rng = sim.rng
    choice = rng.randrange(4)
    if choice == 0 or not sim.captured:
        data = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, MALFORMED_BYTES_MAX)))
    elif choice == 1:  # a real record cut short
        record = rng.choice(sim.captured)
        data = record[: rng.randint(0, max(0, len(record) - 1))]
    elif choice == 2:  # JSON, but not a record
        data = json.dumps(
            {"transfer_id": str(uuid.UUID(int=rng.getrandbits(128))), "x": 1}
        ).encode()
    else:  # a real record altered after it was signed
        data = rng.choice(sim.captured)
        try:
            raw = json.loads(data)
            raw["payload"]["transfer_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            data = json.dumps(raw).encode()
        except (ValueError, TypeError, KeyError):
            pass  # it was not a record to begin with: send it as it is
    if rng.random() < 0.5:
        _append(sim, data)
    else:
        _send(sim, rng.choice(sim.parties), data)
