"""A seeded, single-threaded simulation of a federation of registry nodes.

Nodes run the real ``registry.protocol`` state machines and the real ``a6wire``
signing and verification behind a fake edge that keeps the production shape:
each transition, its ledger effects, its outbox rows and the consumed message
id (or decision offset) are committed in one step to the node's durable store;
a relay publishes the outbox afterwards (at least once). A crash loses only the
volatile part of a node (what the relay had in flight).

The bus has one inbox queue per node (messages may be dropped, duplicated,
delayed and so reordered) and one totally ordered, reliable decision log (an
append may be delayed, and is lost only if the writer crashes before the
broker acknowledged it; the unsent outbox row is then republished).

All randomness comes from one ``random.Random(seed)`` and time is simulated,
so a seed replays exactly.
"""

from __future__ import annotations

import heapq
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from a6wire.errors import WireError
from a6wire.messages import Decision, Envelope, Prepare, SerialBlock, Vote
from a6wire.signing import seal
from a6wire.verification import (
    decode_envelope,
    encode_envelope,
    verify_envelope,
    verify_signature,
)
from registry.protocol import coordinator, participant
from registry.protocol.arbiter import TransferKey, names_party, read_decision
from registry.protocol.constants import DECISION_GRACE_MS
from registry.protocol.coordinator import CoordinatorState
from registry.protocol.effects import (
    AppendDecision,
    ApplyAbort,
    ApplyCommit,
    Effect,
    HoldIncoming,
    HoldOutgoing,
    SendToInbox,
)
from registry.protocol.events import (
    DecisionRead,
    DoneReceived,
    Event,
    PrepareReceived,
    Tick,
    VoteReceived,
)
from registry.protocol.participant import ParticipantState
from tests.sim import factories
from tests.sim.ledger import FakeLedger, Unit

PARTIES = ("CHE", "GHA", "JPN", "SGP", "THA")
EVIL_MEMBER = "ZZZ"  # a federation member with a real key that runs no registry node
STRANGER = "XXX"  # not in the directory at all

TICK_INTERVAL_MS = 1_000
RELAY_DELAY_MAX_MS = 20
INBOX_LATENCY_MAX_MS = 60
DECISION_LATENCY_MAX_MS = 40
CONSUMER_LAG_MAX_MS = 80
DELAY_SPIKE_MAX_MS = 6_000
CLOCK_SKEW_MAX_MS = 1_500
REQUEST_WINDOW_MS = 10_000
TRANSFER_TIMEOUT_MIN_MS = 1_500
TRANSFER_TIMEOUT_MAX_MS = 15_000
FAULT_WINDOW_MS = 25_000
DOWNTIME_MAX_MS = 45_000
# Time allowed after the last deadline (plus grace) or the last restart for every
# live node to reach a final state: consumer lag, re-send cycles, delay spikes.
RECOVERY_MS = 20_000
QUIESCENCE_MAX_MS = 600_000
EVENTS_MAX = 200_000
LOST_APPEND_PROBABILITY = 0.5

Key = TransferKey
State = CoordinatorState | ParticipantState


@dataclass
class Faults:
    """The fault mix of one seed, drawn once so a seed reads as a scenario."""

    drop_probability: float
    duplicate_probability: float
    spike_probability: float
    crash_count_max: int
    crash_after_commit_probability: float
    permanent_crash_probability: float
    forgery_count: int
    replay_count: int

    @classmethod
    def draw(cls, rng: random.Random) -> Faults:
        return cls(
            drop_probability=rng.choice([0.0, 0.05, 0.2, 0.35]),
            duplicate_probability=rng.choice([0.0, 0.1, 0.3]),
            spike_probability=rng.choice([0.0, 0.05, 0.2]),
            crash_count_max=rng.choice([0, 1, 2, 4]),
            crash_after_commit_probability=rng.choice([0.0, 0.05, 0.25]),
            permanent_crash_probability=rng.choice([0.0, 0.3]),
            forgery_count=rng.choice([0, 2, 5]),
            replay_count=rng.choice([0, 3, 10]),
        )


@dataclass
class OutboxRow:
    row_id: int
    to_log: bool
    party: str  # destination inbox when not to the log
    envelope: Envelope
    sent: bool = False


@dataclass
class Durable:
    """What survives a crash: the node's database."""

    ledger: FakeLedger
    states: dict[Key, State] = field(default_factory=dict)
    outbox: list[OutboxRow] = field(default_factory=list)
    consumed_message_ids: set[uuid.UUID] = field(default_factory=set)
    decision_offset: int = 0
    message_sequence: int = 0


@dataclass
class TransferTruth:
    """What the simulator knows about a transfer independently of the nodes."""

    key: Key
    prepare: Prepare
    refused_by: tuple[str, ...]


@dataclass
class LogRecord:
    data: bytes
    genuine: bool  # appended by an honest node, not by the fault injector


Behaviour = Callable[..., Any]


@dataclass
class Variant:
    """The transition functions a node uses; broken variants swap one out."""

    name: str = "correct"
    coordinator_step: Behaviour = coordinator.step
    participant_step: Behaviour = participant.step
    verify_inbox: bool = True
    judge_decisions: bool = True


class Node:
    def __init__(self, sim: Simulation, index: int, party: str, skew_ms: int) -> None:
        self.sim = sim
        self.index = index
        self.party = party
        self.durable = Durable(ledger=FakeLedger(party))
        self.up = True
        self.epoch = 0
        self.skew_ms = skew_ms
        self.permanently_down = False
        self.in_flight: set[int] = set()  # volatile: rows the relay handed to the bus
        self.backlog: list[bytes] = []  # inbox records that arrived while down (Kafka keeps them)

    def now(self) -> datetime:
        return factories.at(self.sim.time_ms + self.skew_ms)

    # -- one local transaction -------------------------------------------------

    def commit(self, key: Key, state: State | None, effects: list[Effect]) -> None:
        durable = self.durable
        if state is not None and not _is_unknown(state):
            durable.states[key] = state
        rows_before = len(durable.outbox)
        for effect in effects:
            self._perform(effect)
        self.sim.after_transaction(self, added_rows=len(durable.outbox) > rows_before)

    def _perform(self, effect: Effect) -> None:
        ledger = self.durable.ledger
        if isinstance(effect, HoldOutgoing):
            ledger.hold_outgoing(effect)
        elif isinstance(effect, HoldIncoming):
            ledger.hold_incoming(effect)
        elif isinstance(effect, ApplyCommit):
            ledger.apply_commit(effect)
        elif isinstance(effect, ApplyAbort):
            ledger.apply_abort(effect)
        elif isinstance(effect, SendToInbox):
            self._add_outbox(False, effect.party, effect.payload)
        elif isinstance(effect, AppendDecision):
            self._add_outbox(True, "", effect.decision)

    def _add_outbox(self, to_log: bool, party: str, payload: Any) -> None:
        durable = self.durable
        durable.message_sequence += 1
        # Signed inside the transaction, so a republished row has the same message id.
        envelope = seal(
            payload,
            sender_party=self.party,
            sent_at=self.now(),
            message_id=uuid.UUID(int=((self.index + 1) << 64) | durable.message_sequence),
            private_key=factories.party_key(self.party),
        )
        durable.outbox.append(OutboxRow(len(durable.outbox), to_log, party, envelope))

    # -- handlers ------------------------------------------------------------------

    def request_transfer(self, prepare: Prepare) -> None:
        refusals = self.durable.ledger.refusals_for_outgoing(prepare)
        state, effects = coordinator.begin(prepare, refusals, self.now())
        key = Key(prepare.transfer_id, self.party)
        self.commit(key, state, effects)

    def on_inbox(self, data: bytes) -> None:
        try:
            envelope = decode_envelope(data)
            if self.sim.variant.verify_inbox:
                verify_envelope(envelope, self.sim.directory)
        except WireError as error:
            self.sim.refused[error.reason_code] = self.sim.refused.get(error.reason_code, 0) + 1
            return
        durable = self.durable
        if envelope.message_id in durable.consumed_message_ids:
            return  # the inbox table drops a redelivered message
        durable.consumed_message_ids.add(envelope.message_id)
        payload = envelope.payload
        key = Key(envelope.transfer_id, payload.coordinator_party)
        state = durable.states.get(key)
        event: Event
        if isinstance(payload, Prepare):
            if key.coordinator_party == self.party:
                return
            current = state if isinstance(state, ParticipantState) else None
            current = current or participant.initial(self.party, key.transfer_id, key[1])
            refusals: tuple[str, ...] = ()
            if current.phase is participant.ParticipantPhase.UNKNOWN:
                refusals = durable.ledger.refusals_for_incoming(
                    payload, self.party in self.sim.refusing(key)
                )
            event = PrepareReceived(envelope, refusals)
            self.commit(key, *self.sim.variant.participant_step(current, event, self.now()))
        elif isinstance(state, CoordinatorState):
            event = VoteReceived(envelope) if isinstance(payload, Vote) else DoneReceived(envelope)
            self.commit(key, *self.sim.variant.coordinator_step(state, event, self.now()))

    def read_decisions(self) -> None:
        log = self.sim.decision_log
        while self.up and self.durable.decision_offset < len(log):
            self._read_one(log[self.durable.decision_offset].data)

    def _read_one(self, data: bytes) -> None:
        durable = self.durable
        durable.decision_offset += 1  # committed with the record's effects
        try:
            record = decode_envelope(data)
        except WireError:
            self.sim.after_transaction(self, added_rows=False)
            return
        if not isinstance(record.payload, Decision):
            return
        if self.sim.variant.judge_decisions:
            read = read_decision(record, self.sim.verify)
        else:
            read = DecisionRead(record, None)
        key = Key(record.transfer_id, record.payload.coordinator_party)
        state = durable.states.get(key)
        if isinstance(state, CoordinatorState):
            self.commit(key, *self.sim.variant.coordinator_step(state, read, self.now()))
        elif isinstance(state, ParticipantState):
            self.commit(key, *self.sim.variant.participant_step(state, read, self.now()))
        elif key.coordinator_party != self.party and names_party(record, self.party):
            fresh = participant.initial(self.party, key.transfer_id, key.coordinator_party)
            self.commit(key, *self.sim.variant.participant_step(fresh, read, self.now()))

    def tick(self) -> None:
        for key in list(self.durable.states):
            state = self.durable.states[key]
            if isinstance(state, CoordinatorState):
                new, effects = self.sim.variant.coordinator_step(state, Tick(), self.now())
            else:
                new, effects = self.sim.variant.participant_step(state, Tick(), self.now())
            if new != state or effects:
                self.commit(key, new, effects)
            if not self.up:
                return


def _is_unknown(state: State) -> bool:
    return (
        isinstance(state, ParticipantState)
        and state.phase is participant.ParticipantPhase.UNKNOWN
        and state.winner is None
    )


class Simulation:
    def __init__(self, seed: int, variant: Variant | None = None) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.variant = variant or Variant()
        self.time_ms = 0
        self._queue: list[tuple[int, int, str, tuple[Any, ...]]] = []
        self._sequence = 0
        self.events_run = 0
        rng = self.rng
        parties = sorted(rng.sample(PARTIES, rng.randint(2, 4)))
        self.directory = factories.directory_for([*parties, EVIL_MEMBER])
        self.verify = partial(verify_signature, directory=self.directory)
        self.nodes = {
            party: Node(self, i, party, rng.randint(-CLOCK_SKEW_MAX_MS, CLOCK_SKEW_MAX_MS))
            for i, party in enumerate(parties)
        }
        self.faults = Faults.draw(rng)
        self.crashes_left = self.faults.crash_count_max
        self.decision_log: list[LogRecord] = []
        self.transfers: dict[Key, TransferTruth] = {}
        self.forged_transfer_ids: set[uuid.UUID] = set()
        self.captured: list[bytes] = []
        self.refused: dict[str, int] = {}
        self.issued: dict[int, str] = {}
        self.first_transfer_pending: set[int] = set()
        self.violations: list[str] = []
        self.continuous_checks: list[Callable[[Simulation], None]] = []
        self._issue_units(parties)

    # -- scenario ------------------------------------------------------------------

    def _issue_units(self, parties: list[str]) -> None:
        serial = 1
        for party in parties:
            ledger = self.nodes[party].durable.ledger
            for _ in range(self.rng.randint(1, 3)):
                size = self.rng.randint(1, 8)
                done = self.rng.random() < 0.3
                for s in range(serial, serial + size):
                    ledger.holdings[s] = Unit(factories.account_of(party), party, done)
                    self.issued[s] = party
                    if not done:
                        self.first_transfer_pending.add(s)
                serial += size + self.rng.randint(0, 2)

    def refusing(self, key: Key) -> tuple[str, ...]:
        truth = self.transfers.get(key)
        return truth.refused_by if truth else ()

    def _plan(self) -> None:
        rng = self.rng
        for _ in range(rng.randint(2, 5)):
            self.schedule(rng.randint(0, REQUEST_WINDOW_MS), "request", ())
        for _ in range(self.crashes_left):
            self.schedule(rng.randint(0, FAULT_WINDOW_MS), "crash", (rng.choice(self.parties),))
        for _ in range(self.faults.forgery_count):
            self.schedule(rng.randint(0, FAULT_WINDOW_MS), "forge", ())
        for _ in range(self.faults.replay_count):
            self.schedule(rng.randint(0, FAULT_WINDOW_MS), "replay", ())
        for party in self.parties:
            self.schedule(rng.randint(1, TICK_INTERVAL_MS), "tick", (party, 0))

    @property
    def parties(self) -> list[str]:
        return list(self.nodes)

    def _blocks_for(self, node: Node) -> list[SerialBlock]:
        rng = self.rng
        ledger = node.durable.ledger
        candidates = (
            sorted(ledger.holdings) if rng.random() < 0.15 else ledger.available()
        )  # sometimes ask for units already locked, to exercise refusal
        if not candidates:
            return []
        start = rng.choice(candidates)
        length_max = rng.randint(1, 6)
        run = [start]
        while (
            len(run) < length_max
            and run[-1] + 1 in ledger.holdings
            and _same_attributes(ledger.holdings[start], ledger.holdings[run[-1] + 1])
        ):
            run.append(run[-1] + 1)
        unit = ledger.holdings[start]
        return [
            factories.block(
                run[0],
                run[-1],
                originating_party=unit.originating_party,
                first_transfer_done=unit.first_transfer_done,
            )
        ]

    def _request(self) -> None:
        rng = self.rng
        coordinator_party = rng.choice(self.parties)
        node = self.nodes[coordinator_party]
        if not node.up:
            return  # the API is down with its node
        blocks = self._blocks_for(node)
        if not blocks:
            return
        others = [p for p in self.parties if p != coordinator_party]
        receiver = rng.choice(others)
        participants = [receiver]
        extra = [p for p in others if p != receiver]
        if extra and rng.random() < 0.25:
            participants.append(rng.choice(extra))
        transfer_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        deadline = node.now() + timedelta(
            milliseconds=rng.randint(TRANSFER_TIMEOUT_MIN_MS, TRANSFER_TIMEOUT_MAX_MS)
        )
        prepare = factories.prepare(transfer_id, coordinator_party, participants, blocks, deadline)
        refused_by = tuple(p for p in participants if rng.random() < 0.1)
        key = Key(transfer_id, coordinator_party)
        self.transfers[key] = TransferTruth(key, prepare, refused_by)
        node.request_transfer(prepare)

    # -- event loop ----------------------------------------------------------------

    def schedule(self, at_ms: int, kind: str, args: tuple[Any, ...]) -> None:
        self._sequence += 1
        heapq.heappush(self._queue, (at_ms, self._sequence, kind, args))

    def run_until(self, end_ms: int, *, stop_when_quiet: bool = False) -> None:
        while self._queue and self.events_run < EVENTS_MAX:
            at_ms, _, kind, args = self._queue[0]
            if at_ms > end_ms:
                break
            heapq.heappop(self._queue)
            self.time_ms = max(self.time_ms, at_ms)
            self.events_run += 1
            getattr(self, f"_on_{kind}")(*args)
            if stop_when_quiet and kind == "tick" and self._quiet():
                return
        self.time_ms = max(self.time_ms, end_ms)

    def _quiet(self) -> bool:
        for node in self.nodes.values():
            if any(not row.sent for row in node.durable.outbox):
                return False
            if node.durable.decision_offset < len(self.decision_log):
                return False
            for state in node.durable.states.values():
                if isinstance(state, CoordinatorState):
                    if not state.is_decided:
                        return False
                elif not state.is_final:
                    return False
        return all(node.up for node in self.nodes.values())

    def after_transaction(self, node: Node, *, added_rows: bool) -> None:
        for check in self.continuous_checks:
            check(self)
        if not added_rows:
            return
        if (
            self.crashes_left > 0
            and self.time_ms < FAULT_WINDOW_MS
            and self.rng.random() < self.faults.crash_after_commit_probability
        ):
            self.crashes_left -= 1
            self._crash(node)  # committed, not yet published: the outbox must cover it
            return
        relay_at = self.time_ms + self.rng.randint(0, RELAY_DELAY_MAX_MS)
        self.schedule(relay_at, "relay", (node.party, node.epoch))

    def _on_request(self) -> None:
        self._request()

    def _on_tick(self, party: str, epoch: int) -> None:
        node = self.nodes[party]
        if not node.up or node.epoch != epoch:
            return
        node.tick()
        if node.up and node.epoch == epoch:
            jitter = self.rng.randint(0, TICK_INTERVAL_MS // 5)
            self.schedule(self.time_ms + TICK_INTERVAL_MS + jitter, "tick", (party, epoch))

    def _latency(self, base_max_ms: int) -> int:
        latency = self.rng.randint(1, base_max_ms)
        if self.time_ms < FAULT_WINDOW_MS and self.rng.random() < self.faults.spike_probability:
            latency += self.rng.randint(0, DELAY_SPIKE_MAX_MS)
        return latency

    def _on_relay(self, party: str, epoch: int) -> None:
        node = self.nodes[party]
        if not node.up or node.epoch != epoch:
            return
        for row in node.durable.outbox:
            if row.sent or row.row_id in node.in_flight:
                continue
            node.in_flight.add(row.row_id)
            data = encode_envelope(row.envelope)
            if row.to_log:
                latency = self._latency(DECISION_LATENCY_MAX_MS)
                self.schedule(self.time_ms + latency, "append", (party, epoch, row.row_id, data))
            else:
                self._publish_inbox(row.party, data)
                ack = self.rng.randint(1, INBOX_LATENCY_MAX_MS)
                self.schedule(self.time_ms + ack, "ack", (party, epoch, row.row_id))

    def _publish_inbox(self, party: str, data: bytes) -> None:
        if party not in self.nodes:
            return
        faults = self.faults
        in_fault_window = self.time_ms < FAULT_WINDOW_MS
        self.captured.append(data)
        if in_fault_window and self.rng.random() < faults.drop_probability:
            return
        copies = 2 if in_fault_window and self.rng.random() < faults.duplicate_probability else 1
        for _ in range(copies):
            arrival = self.time_ms + self._latency(INBOX_LATENCY_MAX_MS)
            self.schedule(arrival, "deliver", (party, data))

    def _on_deliver(self, party: str, data: bytes) -> None:
        node = self.nodes[party]
        if node.up:
            node.on_inbox(data)
        else:
            node.backlog.append(data)

    def _on_ack(self, party: str, epoch: int, row_id: int) -> None:
        node = self.nodes[party]
        if node.up and node.epoch == epoch:
            node.durable.outbox[row_id].sent = True
            node.in_flight.discard(row_id)

    def _on_append(self, party: str, epoch: int, row_id: int, data: bytes) -> None:
        node = self.nodes[party]
        crashed_since = node.epoch != epoch or not node.up
        if crashed_since and self.rng.random() < LOST_APPEND_PROBABILITY:
            return  # never acknowledged, never written; the outbox row stays unsent
        self.decision_log.append(LogRecord(data, genuine=True))
        self._announce_append()
        self.schedule(self.time_ms + self.rng.randint(1, 10), "ack", (party, epoch, row_id))

    def _announce_append(self) -> None:
        for party in self.parties:
            lag = self.rng.randint(0, CONSUMER_LAG_MAX_MS)
            if self.rng.random() < self.faults.spike_probability:
                lag += self.rng.randint(0, DELAY_SPIKE_MAX_MS)
            self.schedule(self.time_ms + lag, "read", (party,))

    def _on_read(self, party: str) -> None:
        node = self.nodes[party]
        if node.up:
            node.read_decisions()

    def _on_crash(self, party: str) -> None:
        if self.crashes_left <= 0:
            return
        self.crashes_left -= 1
        self._crash(self.nodes[party])

    def _crash(self, node: Node) -> None:
        if not node.up:
            return
        node.up = False
        node.epoch += 1
        node.in_flight.clear()
        is_coordinator = any(isinstance(s, CoordinatorState) for s in node.durable.states.values())
        if is_coordinator and self.rng.random() < self.faults.permanent_crash_probability:
            node.permanently_down = True
            return
        downtime = self.rng.randint(50, DOWNTIME_MAX_MS)
        self.schedule(self.time_ms + downtime, "restart", (node.party,))

    def _on_restart(self, party: str) -> None:
        node = self.nodes[party]
        if node.up:
            return
        node.up = True
        node.permanently_down = False
        node.skew_ms = self.rng.randint(-CLOCK_SKEW_MAX_MS, CLOCK_SKEW_MAX_MS)
        # Recovery order from PROTOCOL.md: read the decision partition first, then
        # republish the unsent outbox, then consume the inbox backlog.
        node.read_decisions()
        self.schedule(self.time_ms, "relay", (party, node.epoch))
        backlog, node.backlog = node.backlog, []
        for data in backlog:
            self.schedule(self.time_ms + self.rng.randint(1, 20), "deliver", (party, data))
        self.schedule(self.time_ms + TICK_INTERVAL_MS, "tick", (party, node.epoch))

    # -- the fault injector's forgeries ----------------------------------------------

    def _on_forge(self) -> None:
        from tests.sim.forgery import forge

        forge(self)

    def _on_replay(self) -> None:
        if not self.captured:
            return
        data = self.rng.choice(self.captured)
        arrival = self.time_ms + self._latency(INBOX_LATENCY_MAX_MS)
        self.schedule(arrival, "deliver", (self.rng.choice(self.parties), data))

    # -- driving a whole seed --------------------------------------------------------

    def termination_check_ms(self) -> int:
        deadlines = [
            int((t.prepare.deadline - factories.EPOCH).total_seconds() * 1000)
            for t in self.transfers.values()
        ]
        last_deadline = max(deadlines, default=0) + DECISION_GRACE_MS + CLOCK_SKEW_MAX_MS
        # Every crash happens inside the fault window and every restart that is
        # going to happen has happened by its end plus the longest downtime.
        return max(last_deadline, FAULT_WINDOW_MS + DOWNTIME_MAX_MS) + RECOVERY_MS

    def run(self) -> None:
        """Faults, then the termination horizon, then every node back and quiet."""
        from tests.sim import checker

        self._plan()
        # Requests all happen within the window, so the horizon is known once
        # they have; run to the end of the window first, then to the horizon.
        self.run_until(FAULT_WINDOW_MS)
        self.run_until(self.termination_check_ms())
        checker.check_termination(self)
        for party in self.parties:
            if not self.nodes[party].up:
                self.schedule(self.time_ms + 1, "restart", (party,))
        self.crashes_left = 0
        self.run_until(self.time_ms + QUIESCENCE_MAX_MS, stop_when_quiet=True)
        checker.check_final(self)


def _same_attributes(a: Unit, b: Unit) -> bool:
    return (a.originating_party, a.first_transfer_done, a.account_id) == (
        b.originating_party,
        b.first_transfer_done,
        b.account_id,
    )
