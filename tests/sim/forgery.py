"""The fault injector's forgeries: messages a node must refuse without any change.

Each forgery is signed with a wrong key, by a sender outside the federation, or
by a real member (``EVIL_MEMBER``) claiming a role it does not have.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from a6wire.messages import Decision, Envelope, Outcome, Prepare, Vote, VoteChoice
from a6wire.signing import payload_digest, seal
from a6wire.verification import encode_envelope
from tests.sim import factories

if TYPE_CHECKING:
    from tests.sim.world import Simulation

FORGER_SALT = "forger"


def _seal(sim: Simulation, payload: object, sender: str, key: Ed25519PrivateKey) -> Envelope:
    return seal(
        payload,  # type: ignore[arg-type]
        sender_party=sender,
        sent_at=factories.at(sim.time_ms),
        message_id=uuid.UUID(int=sim.rng.getrandbits(128), version=4),
        private_key=key,
    )


def _wrong_key(party: str) -> Ed25519PrivateKey:
    return factories.party_key(party, FORGER_SALT)


def _fresh_prepare(sim: Simulation, coordinator: str, receiver: str) -> Prepare:
    transfer_id = uuid.UUID(int=sim.rng.getrandbits(128), version=4)
    sim.forged_transfer_ids.add(transfer_id)
    first = sim.rng.choice(sorted(sim.issued))
    return factories.prepare(
        transfer_id,
        coordinator,
        [receiver],
        [factories.block(first, first, originating_party=sim.issued[first])],
        factories.at(sim.time_ms + 10_000),
    )


def _deliver(sim: Simulation, party: str, envelope: Envelope) -> None:
    arrival = sim.time_ms + sim.rng.randint(1, 50)
    sim.schedule(arrival, "deliver", (party, encode_envelope(envelope)))


def _append(sim: Simulation, envelope: Envelope) -> None:
    from tests.sim.world import LogRecord

    sim.decision_log.append(LogRecord(encode_envelope(envelope), genuine=False))
    sim._announce_append()


def forge(sim: Simulation) -> None:
    from tests.sim.world import EVIL_MEMBER, STRANGER

    rng = sim.rng
    parties = sim.parties
    claimed, receiver = rng.sample(parties, 2)
    truths = list(sim.transfers.values())
    kind = rng.randrange(7) if truths else rng.randrange(2)
    evil_key = factories.party_key(EVIL_MEMBER)
    if kind == 0:  # a PREPARE in another Party's name, signed with the wrong key
        prepare = _fresh_prepare(sim, claimed, receiver)
        _deliver(sim, receiver, _seal(sim, prepare, claimed, _wrong_key(claimed)))
        return
    if kind == 1:  # a PREPARE from outside the federation
        prepare = _fresh_prepare(sim, STRANGER, receiver)
        _deliver(sim, receiver, _seal(sim, prepare, STRANGER, _wrong_key(STRANGER)))
        return
    truth = rng.choice(truths)
    real = truth.prepare
    coordinator = real.coordinator_party
    digest = payload_digest(real)
    forged_votes = tuple(
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
    commit = Decision(
        transfer_id=real.transfer_id,
        outcome=Outcome.COMMIT,
        decided_by=coordinator,
        coordinator_party=coordinator,
        participants=real.participants,
        prepare_digest=digest,
        yes_votes=forged_votes,
    )
    if kind == 2:  # a COMMIT in the coordinator's name, signed with the wrong key
        _append(sim, _seal(sim, commit, coordinator, _wrong_key(coordinator)))
    elif kind == 3:  # a real member signs a COMMIT that names another coordinator
        _append(sim, _seal(sim, commit, EVIL_MEMBER, evil_key))
    elif kind == 4:  # a real member claims to be a participant and aborts
        fake_prepare = _seal(sim, real, EVIL_MEMBER, evil_key)
        abort = Decision(
            transfer_id=real.transfer_id,
            outcome=Outcome.ABORT,
            decided_by=EVIL_MEMBER,
            coordinator_party=coordinator,
            participants=(*real.participants, EVIL_MEMBER),
            prepare_digest=digest,
            prepare=fake_prepare,
        )
        _append(sim, _seal(sim, abort, EVIL_MEMBER, evil_key))
    elif kind == 5:  # a YES vote in a participant's name, signed with the wrong key
        _deliver(sim, coordinator, forged_votes[0])
    else:  # a YES vote, validly signed, from a Party that is not a participant
        vote = forged_votes[0].payload
        _deliver(sim, coordinator, _seal(sim, vote, EVIL_MEMBER, evil_key))
