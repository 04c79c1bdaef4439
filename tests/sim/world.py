"""A seeded, single-threaded simulation of a federation of registry nodes.

Each honest node IS the production code: a ``Transfers`` application service
over the in-memory unit of work (``InMemoryTransferUnitOfWork``: the real
ledger handlers, protocol state, decisions, outbox and inbox tables), fed
byte for byte through the Kafka edge's ``TransferBus.handle_*_bytes``, with a
clock that reads the simulated time. The simulator owns only what production
gets from Kafka and the operating system: the bus, the relay, the scheduler,
crashes and time.

What survives a crash is the node's store (the in-memory twin of its
database: what the unit of work committed), the relay's "sent" marks and the
consumer's committed decision offset. A crash raised from inside a handler
(right after a commit that wrote outbox rows, before the relay saw them) stops
the handler where a dying process would stop; the message that caused it is
redelivered after the restart, as Kafka would, and the inbox table drops it.

The bus has one inbox queue per node (messages may be dropped, duplicated,
delayed and so reordered) and two totally ordered, reliable logs, the decision
topic and the federation unit log (an append may be delayed, and is lost only
if the writer crashes before the broker acknowledged it; the unsent outbox row
is then republished).

Each node also runs the production unit index (``UnitIndex`` over the
in-memory index store, fed through ``UnitIndexBus`` from both logs) and the
custody check before its vote on a new PREPARE (PROTOCOL.md invariant 8). The
bounded wait of the Kafka edge (``registry.entrypoints.custody``) becomes: read
both logs to their current end, then vote. The index's store is durable like
the database it stands for; its reading position is its own.

Hostile members (``tests/sim/hostile.py``) are federation members with their
own real keys that run no registry node: they replay, forge, reuse other
coordinators' transfer ids, claim roles they do not have and send bytes that
are not records. Honest transfers are only between honest parties.

All randomness comes from one ``random.Random(seed)`` and time is simulated,
so a seed replays exactly.
"""

from __future__ import annotations

import heapq
import random
import uuid
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from a6wire.messages import Envelope, Outcome, Prepare, Vote, VoteChoice
from a6wire.signing import seal
from a6wire.topics import DECISION_TOPIC, UNIT_LOG_TOPIC, inbox_topic
from a6wire.verification import decode_envelope, verify_signature
from registry.adapters.in_memory import (
    InMemoryStore,
    InMemoryUnitIndexStore,
    InMemoryUnitIndexUnitOfWork,
)
from registry.adapters.messaging import InMemoryQuarantine
from registry.adapters.transfer_unit_of_work import (
    InMemoryTransferStore,
    InMemoryTransferUnitOfWork,
)
from registry.adapters.unit_index import UnitLogPublisher
from registry.application import handlers
from registry.application.commands import (
    InitialiseRegistry,
    IssuanceLine,
    IssueUnits,
    OpenAccount,
    RecordAuthorisation,
    RegisterCooperativeApproach,
)
from registry.application.custody import UnitIndex
from registry.application.transfers import (
    FederationView,
    InitiateTransfer,
    KeySigner,
    MessagePosition,
    Transfers,
)
from registry.application.transfers import service as transfers_service
from registry.domain.approaches import CooperativeApproach
from registry.domain.authorisations import Authorisation, Purpose
from registry.domain.blocks import BlockStatus, SerialBlock
from registry.domain.selection import SerialRangeSelection
from registry.entrypoints.bus import TransferBus, UnitIndexBus
from registry.protocol.arbiter import EnvelopeVerifier, TransferKey
from registry.protocol.constants import DECISION_GRACE_MS
from registry.protocol.coordinator import CoordinatorState
from registry.protocol.participant import ParticipantState
from tests.sim import factories

PARTIES = ("CHE", "GHA", "JPN", "SGP", "THA")
# Federation members with real keys that run no registry node and attack.
HOSTILE_PARTIES = ("ZZA", "ZZB")
STRANGER = "XXX"  # not in the directory at all

APPROACH_ID = factories.APPROACH_ID
VINTAGE = 2025
SECTOR = "energy"
ACTIVITY = "solar_pv"
UNKNOWN_ACCOUNT_SUFFIX = "NOPE"

TICK_INTERVAL_MS = 1_000
RELAY_DELAY_MAX_MS = 20
INBOX_LATENCY_MAX_MS = 60
DECISION_LATENCY_MAX_MS = 40
CONSUMER_LAG_MAX_MS = 80
DELAY_SPIKE_MAX_MS = 6_000
CLOCK_SKEW_MAX_MS = 1_500
REQUEST_WINDOW_MS = 10_000
TRANSFER_DEADLINE_MIN_S = 2
TRANSFER_DEADLINE_MAX_S = 15
FAULT_WINDOW_MS = 25_000
DOWNTIME_MAX_MS = 45_000
# Time allowed after the last deadline (plus grace) or the last restart for every
# live node to reach a final state: consumer lag, re-send cycles, delay spikes.
RECOVERY_MS = 20_000
QUIESCENCE_MAX_MS = 600_000
EVENTS_MAX = 200_000
LOST_APPEND_PROBABILITY = 0.5

# The events after which a node's ledger may have changed: the continuous checks run after these.
LEDGER_EVENTS = frozenset({"request", "deliver", "read", "tick", "restart"})

Key = TransferKey
State = CoordinatorState | ParticipantState


class NodeCrashed(BaseException):
    """Raised from a commit hook to stop a handler where a dying process would stop.

    A BaseException, so the edge's ``except Exception`` does not swallow it.
    """


class SimUnitOfWork(InMemoryTransferUnitOfWork):
    """The production in-memory unit of work, in a process that may die before its commit.

    The crash is raised from the outer ``commit`` before anything is published to
    the store, so what the simulator checks afterwards is whether the unit of
    work really left the committed store untouched.
    """

    before_commit: Callable[[], None] | None = None

    def commit(self) -> None:
        if self._depth == 1 and self.before_commit is not None:
            self.before_commit()
        super().commit()


@dataclass
class Faults:
    """The fault mix of one seed, drawn once so a seed reads as a scenario."""

    drop_probability: float
    duplicate_probability: float
    spike_probability: float
    crash_count_max: int
    crash_after_commit_probability: float
    crash_before_commit_probability: float
    permanent_crash_probability: float
    hostile_count: int
    attack_count: int
    replay_count: int

    @classmethod
    def draw(cls, rng: random.Random) -> Faults:
        return cls(
            drop_probability=rng.choice([0.0, 0.05, 0.2, 0.35]),
            duplicate_probability=rng.choice([0.0, 0.1, 0.3]),
            spike_probability=rng.choice([0.0, 0.05, 0.2]),
            crash_count_max=rng.choice([0, 1, 2, 4]),
            crash_after_commit_probability=rng.choice([0.0, 0.05, 0.25]),
            crash_before_commit_probability=rng.choice([0.0, 0.02, 0.1]),
            permanent_crash_probability=rng.choice([0.0, 0.3]),
            hostile_count=rng.choice([0, 1, 1, 2]),
            attack_count=rng.choice([0, 4, 10, 20]),
            replay_count=rng.choice([0, 3, 10]),
        )


@dataclass
class TransferTruth:
    """What the simulator knows about an honest transfer independently of the nodes."""

    key: Key
    receiver: str
    deadline: datetime
    prepare: Prepare | None = None  # the genuine PREPARE, once its coordinator sent it


@dataclass
class LogRecord:
    data: bytes
    genuine: bool  # appended by an honest node, not by a hostile member or the injector


@dataclass
class Variant:
    """How a node is built; broken variants swap one piece of production code out.

    ``participant_step``/``coordinator_step`` replace ``step`` of the protocol
    modules the service calls, for the duration of one run; ``bus_class`` and
    ``judge_decisions`` replace the edge's checks.
    """

    name: str = "correct"
    coordinator_step: Callable[..., Any] | None = None
    participant_step: Callable[..., Any] | None = None
    bus_class: type[TransferBus] = TransferBus
    judge_decisions: bool = True
    # False: the node keeps its unit index but never asks it before a vote.
    custody: bool = True
    unit_index_class: type[UnitIndex] = UnitIndex
    unit_of_work_class: type[SimUnitOfWork] = SimUnitOfWork


class _StepOverride:
    """A protocol module with ``step`` replaced; every other name is the module's."""

    def __init__(self, module: Any, step: Callable[..., Any]) -> None:
        self._module = module
        self.step = step

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


@contextmanager
def _variant_installed(variant: Variant) -> Iterator[None]:
    """Swap the protocol modules the service calls for the variant's, for one run."""
    namespace = vars(transfers_service)
    saved = {name: namespace[name] for name in ("coordinator", "participant")}
    if variant.coordinator_step is not None:
        namespace["coordinator"] = _StepOverride(saved["coordinator"], variant.coordinator_step)
    if variant.participant_step is not None:
        namespace["participant"] = _StepOverride(saved["participant"], variant.participant_step)
    try:
        yield
    finally:
        namespace.update(saved)


@contextmanager
def _logs_recorded(sink: list[dict[str, Any]]) -> Iterator[None]:
    """Send structlog's events of one run to ``sink`` (errors only), then restore.

    The production code logs every step; rendering it would be most of a seed's
    time, and an error logged by the edge (a handler that raised and was
    acknowledged) is evidence the checker wants.
    """

    def record(_: Any, method: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
        if method in ("error", "exception", "critical"):
            sink.append(dict(event))
        raise structlog.DropEvent

    saved = structlog.get_config()
    structlog.configure(
        processors=[record],
        wrapper_class=structlog.make_filtering_bound_logger(40),  # logging.ERROR
        cache_logger_on_first_use=False,
    )
    try:
        yield
    finally:
        structlog.configure(**saved)


class NodeClock:
    """The node's view of simulated time, skewed; it is the service's ``Clock``."""

    def __init__(self, sim: Simulation, node: Node) -> None:
        self._sim = sim
        self._node = node

    def now(self) -> datetime:
        return factories.at(self._sim.time_ms + self._node.skew_ms)


class SeededSigner(KeySigner):
    """The production signer with message ids drawn from the seed, so a seed replays."""

    def __init__(self, party: str, private_key: Ed25519PrivateKey, rng: random.Random) -> None:
        super().__init__(party, private_key)
        self._rng = rng

    def seal(self, payload: Any, sent_at: datetime) -> Envelope:
        return seal(
            payload,
            sender_party=self.party,
            sent_at=sent_at,
            message_id=uuid.UUID(int=self._rng.getrandbits(128), version=4),
            private_key=factories.party_key(self.party),
        )


class Node:
    """One honest registry node: a durable store, and the production service over it."""

    def __init__(self, sim: Simulation, party: str, skew_ms: int) -> None:
        self.sim = sim
        self.party = party
        self.registry_id = factories.registry_of(party)
        self.account_id = factories.account_of(party)
        # Durable: the database (ledger and transfer tables), the relay's sent
        # marks and the decision consumer's committed offset.
        self.store = InMemoryStore()
        self.transfer_store = InMemoryTransferStore()
        # Durable like the database it stands for: a restart keeps what was refused.
        self.quarantine = InMemoryQuarantine()
        # The unit index's tables, with the offsets it has read (its own, not a group's).
        self.index_store = InMemoryUnitIndexStore()
        self.sent: set[int] = set()
        self.decision_offset = 0
        self.inbox_offset = 0
        # Volatile.
        self.up = True
        self.epoch = 0
        self.skew_ms = skew_ms
        self.permanently_down = False
        self.in_flight: set[int] = set()  # rows the relay handed to the bus
        self.backlog: list[bytes] = []  # inbox records that arrived while down (Kafka keeps them)
        self.clock = NodeClock(sim, self)
        self.transfers: Transfers
        self.bus: TransferBus
        self.unit_log: UnitLogPublisher
        self.index: UnitIndex
        self.index_bus: UnitIndexBus
        self.start()

    def uow(self) -> SimUnitOfWork:
        uow = self.sim.variant.unit_of_work_class(
            self.store, self.transfer_store, unit_log=self.unit_log
        )
        uow.before_commit = partial(self.sim.before_commit, self)
        return uow

    def start(self) -> None:
        """Build the process's objects afresh over the durable store (boot or restart)."""
        sim = self.sim
        signer = SeededSigner(self.party, factories.party_key(self.party), sim.rng)
        self.unit_log = UnitLogPublisher(
            signer.seal,
            UNIT_LOG_TOPIC,
            self.clock.now,
            record_ids=lambda: uuid.UUID(int=sim.rng.getrandbits(128), version=4),
        )
        self.transfers = Transfers(
            self.uow,
            self.clock,
            signer,
            sim.verify,
            FederationView(
                self.party, self.registry_id, sim.registry_of, inbox_topic, DECISION_TOPIC
            ),
            on_outbox_commit=partial(sim.after_outbox_commit, self),
        )
        self.bus = sim.variant.bus_class(self.transfers, sim.directory, self.quarantine)
        self.index = sim.variant.unit_index_class(
            lambda: InMemoryUnitIndexUnitOfWork(self.index_store), sim.verify
        )
        self.index_bus = UnitIndexBus(self.index, sim.directory, self.quarantine, party=self.party)
        if sim.variant.custody:
            self.transfers.custody_check = self.index.custody_refusals

    def now(self) -> datetime:
        return self.clock.now()

    # -- the ledger, as the checker and the scenario read it -------------------------

    def blocks(self) -> list[SerialBlock]:
        return list(self.store.blocks.values())

    def run(self, command: Any) -> Any:
        return handlers.handle(self.uow(), self.clock, command)

    # -- what the edge calls --------------------------------------------------------

    def deliver(self, data: bytes) -> None:
        self.inbox_offset += 1
        position = MessagePosition(inbox_topic(self.party), 0, self.inbox_offset)
        custody_current: bool | None = None
        if self.transfers.custody_check is not None and self.bus.is_new_prepare(data):
            # The edge's bounded wait (registry.entrypoints.custody): here the index
            # always reads both logs to where they end now, before the vote.
            self.read_index()
            custody_current = True
        self.bus.handle_inbox_bytes(data, position, custody_current=custody_current)

    def read_index(self) -> None:
        """The unit index's two subscribers, from the offsets the index stored."""
        sim = self.sim
        offsets = self.index.offsets()
        for topic, log, handle in (
            (UNIT_LOG_TOPIC, sim.unit_log, self.index_bus.handle_unit_bytes),
            (DECISION_TOPIC, sim.decision_log, self.index_bus.handle_decision_bytes),
        ):
            offset = offsets.get((topic, 0), 0)
            while self.up and offset < len(log):
                handle(log[offset].data, MessagePosition(topic, 0, offset))
                offset += 1

    def index_current(self) -> bool:
        offsets = self.index.offsets()
        return offsets.get((UNIT_LOG_TOPIC, 0), 0) >= len(self.sim.unit_log) and offsets.get(
            (DECISION_TOPIC, 0), 0
        ) >= len(self.sim.decision_log)

    def read_decisions(self) -> None:
        log = self.sim.decision_log
        while self.up and self.decision_offset < len(log):
            offset = self.decision_offset
            try:
                self.bus.handle_decision_bytes(
                    log[offset].data, MessagePosition(DECISION_TOPIC, 0, offset)
                )
            except NodeCrashed:
                raise
            except Exception as error:
                self.sim.violation("DECISION_HANDLER", f"{self.party} at offset {offset}: {error}")
            self.decision_offset = offset + 1  # the consumer commits after the handler


class Simulation:
    def __init__(
        self, seed: int, variant: Variant | None = None, *, hostile_in_approach: bool = False
    ) -> None:
        self.seed = seed
        self.hostile_in_approach = hostile_in_approach
        self.rng = random.Random(seed)
        self.variant = variant or Variant()
        self.time_ms = 0
        self._queue: list[tuple[int, int, str, tuple[Any, ...]]] = []
        self._sequence = 0
        self.events_run = 0
        self.violations: list[str] = []
        self._violated: set[str] = set()
        self.logged_errors: list[dict[str, Any]] = []
        self.continuous_checks: list[Callable[[Simulation], None]] = []
        rng = self.rng
        parties = sorted(rng.sample(PARTIES, rng.randint(2, 4)))
        self.faults = Faults.draw(rng)
        self.hostile = list(HOSTILE_PARTIES[: self.faults.hostile_count])
        self.directory = factories.directory_for([*parties, *self.hostile])
        self._topic_party = {
            inbox_topic(member.party): member.party for member in self.directory.members
        }
        verify: EnvelopeVerifier = partial(verify_signature, directory=self.directory)
        self.verify = verify if self.variant.judge_decisions else _accept_any
        self.nodes: dict[str, Node] = {}
        for party in parties:
            self.nodes[party] = Node(
                self, party, rng.randint(-CLOCK_SKEW_MAX_MS, CLOCK_SKEW_MAX_MS)
            )
        self.crashes_left = self.faults.crash_count_max
        self.decision_log: list[LogRecord] = []
        self.unit_log: list[LogRecord] = []
        self.transfers: dict[Key, TransferTruth] = {}
        # Every record that crossed the bus (inbox or log), for replays.
        self.captured: list[bytes] = []
        # Honest votes addressed to hostile members: (voter, the vote's envelope).
        self.votes_to_hostile: list[tuple[str, Envelope]] = []
        # What each hostile member will decide once its PREPARE is answered YES.
        self.hostile_plans: dict[Key, tuple[Envelope, Outcome]] = {}
        # Serials issued by honest registries: (originating registry id, serial) -> Party.
        self.issued: dict[tuple[str, int], str] = {}
        self.refused_requests = 0
        self.started = False  # no crash while the ledgers are set up
        self._set_up_ledgers(parties)

    # -- the federation's reference data -----------------------------------------------

    def registry_of(self, party: str) -> str | None:
        return self.directory.member(party).registry_id if self.directory.is_member(party) else None

    def _set_up_ledgers(self, parties: list[str]) -> None:
        # The cooperative approach is the honest Parties'; hostile members are in
        # the federation but not in it, so the receiver's own checks must refuse
        # any PREPARE of theirs that they actually run. With ``hostile_in_approach``
        # they are in it too, and only custody (PROTOCOL.md invariant 8) could
        # refuse a PREPARE for serials they do not hold.
        members = [*parties, *self.hostile] if self.hostile_in_approach else parties
        approach = CooperativeApproach(
            cooperative_approach_id=APPROACH_ID,
            participating_parties=frozenset(members),
            vintage_from=2021,
            vintage_to=2030,
            in_force_from=date(2021, 1, 1),
            sectors=frozenset({SECTOR}),
            activity_types=frozenset({ACTIVITY}),
        )
        for party, node in self.nodes.items():
            node.run(InitialiseRegistry(party, node.registry_id))
            node.run(RegisterCooperativeApproach(approach))
            node.run(
                RecordAuthorisation(
                    Authorisation(
                        authorisation_id=loa_of(party),
                        version=1,
                        authorising_party=party,
                        authorised_on=date(2025, 1, 1),
                        cooperative_approach_id=APPROACH_ID,
                        authorised_parties=frozenset(parties) - {party},
                        purposes=frozenset({Purpose.NDC}),
                    )
                )
            )
            node.run(OpenAccount(node.account_id))
            lines = tuple(
                IssuanceLine(
                    quantity=self.rng.randint(1, 8),
                    cooperative_approach_id=APPROACH_ID,
                    vintage=VINTAGE,
                    sector=SECTOR,
                    activity_type=ACTIVITY,
                    mitigation_type="emission reduction",
                    gwp_values="AR5",
                    authorisation_id=loa_of(party),
                )
                for _ in range(self.rng.randint(1, 3))
            )
            node.run(IssueUnits(node.account_id, lines))
            for block in node.blocks():
                for serial in range(block.first_serial, block.last_serial + 1):
                    self.issued[(block.attributes.originating_registry_id, serial)] = party
        # The issuances were announced long before the scenario: their unit-log
        # records are on the log, and every index has read them.
        for node in self.nodes.values():
            for row_id, row in enumerate(node.transfer_store.outbox):
                assert row.topic == UNIT_LOG_TOPIC, row.topic
                self.unit_log.append(LogRecord(row.value, genuine=True))
                node.sent.add(row_id)
        for node in self.nodes.values():
            node.read_index()

    # -- scenario ------------------------------------------------------------------

    def _plan(self) -> None:
        from tests.sim import hostile

        rng = self.rng
        for _ in range(rng.randint(2, 5)):
            self.schedule(rng.randint(0, REQUEST_WINDOW_MS), "request", ())
        for _ in range(self.crashes_left):
            self.schedule(rng.randint(0, FAULT_WINDOW_MS), "crash", (rng.choice(self.parties),))
        if self.hostile:
            for _ in range(self.faults.attack_count):
                attack = rng.choice(hostile.ATTACKS)
                self.schedule(rng.randint(0, FAULT_WINDOW_MS), "attack", (attack,))
        for _ in range(self.faults.replay_count):
            self.schedule(rng.randint(0, FAULT_WINDOW_MS), "replay", ())
        for party in self.parties:
            self.schedule(rng.randint(1, TICK_INTERVAL_MS), "tick", (party, 0))

    @property
    def parties(self) -> list[str]:
        return list(self.nodes)

    def _request(self) -> None:
        rng = self.rng
        coordinator_party = rng.choice(self.parties)
        node = self.nodes[coordinator_party]
        if not node.up:
            return  # the API is down with its node
        # Sometimes ask for units already locked, to exercise the sender's refusal.
        wanted = (
            (BlockStatus.HELD, BlockStatus.RESERVED) if rng.random() < 0.15 else (BlockStatus.HELD,)
        )
        candidates = sorted(
            (b for b in node.blocks() if b.status in wanted and b.account_id == node.account_id),
            key=lambda b: b.key,
        )
        if not candidates:
            return
        block = rng.choice(candidates)
        first = rng.randint(block.first_serial, block.last_serial)
        last = rng.randint(first, block.last_serial)
        receiver = rng.choice([p for p in self.parties if p != coordinator_party])
        to_account = self.nodes[receiver].account_id
        if rng.random() < 0.1:
            to_account = f"{to_account}-{UNKNOWN_ACCOUNT_SUFFIX}"  # the receiver refuses
        transfer_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        deadline_s = rng.randint(TRANSFER_DEADLINE_MIN_S, TRANSFER_DEADLINE_MAX_S)
        request = InitiateTransfer(
            transfer_id=transfer_id,
            from_account_id=node.account_id,
            to_party=receiver,
            to_account_id=to_account,
            selection=SerialRangeSelection(block.attributes.originating_registry_id, first, last),
            authorisation_id=str(block.attributes.authorisation_id),
            purpose=Purpose.NDC,
            deadline_s=deadline_s,
        )
        deadline = node.now() + timedelta(seconds=deadline_s)
        key = Key(transfer_id, coordinator_party)
        try:
            outcome = node.transfers.initiate_transfer(request)
        except NodeCrashed:
            # The node died before answering: the transfer exists if it committed.
            record = node.transfer_store.transfers.get(key)
            if record is None or record.state is None:
                return
        else:
            if outcome.refused:
                self.refused_requests += 1
                return
        self.transfers[key] = TransferTruth(key, receiver, deadline)

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
            if kind in LEDGER_EVENTS:
                for check in self.continuous_checks:
                    check(self)
            if stop_when_quiet and kind == "tick" and self._quiet():
                return
        self.time_ms = max(self.time_ms, end_ms)

    def _quiet(self) -> bool:
        for node in self.nodes.values():
            if not node.up:
                return False
            if len(node.sent) < len(node.transfer_store.outbox):
                return False
            if node.decision_offset < len(self.decision_log):
                return False
            if not node.index_current():
                return False
            for record in node.transfer_store.transfers.values():
                if record.state is not None and not is_final(record.state):
                    return False
        return True

    def violation(self, invariant: str, detail: str) -> None:
        from tests.sim.checker import VIOLATIONS_KEPT_MAX

        text = f"{invariant}: {detail}"
        if text not in self._violated and len(self.violations) < VIOLATIONS_KEPT_MAX:
            self._violated.add(text)  # a state that persists is reported once
            self.violations.append(f"{text} (t={self.time_ms}ms)")

    def before_commit(self, node: Node) -> None:
        """Every outer commit of a node: the process may die with the transaction open."""
        if (
            self.started
            and self.crashes_left > 0
            and self.time_ms < FAULT_WINDOW_MS
            and self.rng.random() < self.faults.crash_before_commit_probability
        ):
            self.crashes_left -= 1
            self._crash(node)
            raise NodeCrashed(node.party)

    def after_outbox_commit(self, node: Node) -> None:
        """The service's hook after a commit that wrote outbox rows: poke the relay, or die."""
        if (
            self.crashes_left > 0
            and self.time_ms < FAULT_WINDOW_MS
            and self.rng.random() < self.faults.crash_after_commit_probability
        ):
            self.crashes_left -= 1
            self._crash(node)  # committed, not yet published: the outbox must cover it
            raise NodeCrashed(node.party)
        relay_at = self.time_ms + self.rng.randint(0, RELAY_DELAY_MAX_MS)
        self.schedule(relay_at, "relay", (node.party, node.epoch))

    def _on_request(self) -> None:
        self._request()

    def _on_tick(self, party: str, epoch: int) -> None:
        node = self.nodes[party]
        if not node.up or node.epoch != epoch:
            return
        try:
            node.transfers.tick()
        except NodeCrashed:
            return
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
        for row_id, row in enumerate(node.transfer_store.outbox):
            if row_id in node.sent or row_id in node.in_flight:
                continue
            node.in_flight.add(row_id)
            if row.topic in (DECISION_TOPIC, UNIT_LOG_TOPIC):
                latency = self._latency(DECISION_LATENCY_MAX_MS)
                self.schedule(
                    self.time_ms + latency, "append", (party, epoch, row_id, row.topic, row.value)
                )
            else:
                # A topic of no member (a broken node answering a stranger) has no reader.
                to_party = self._topic_party.get(row.topic, STRANGER)
                self._note_genuine(party, to_party, row.value)
                self.publish_inbox(to_party, row.value)
                ack = self.rng.randint(1, INBOX_LATENCY_MAX_MS)
                self.schedule(self.time_ms + ack, "ack", (party, epoch, row_id))

    def _note_genuine(self, sender: str, to_party: str, data: bytes) -> None:
        """Remember honest PREPAREs (the truth) and what honest nodes vote to hostile members."""
        envelope = decode_envelope(data)
        payload = envelope.payload
        if isinstance(payload, Prepare):
            truth = self.transfers.get(Key(payload.transfer_id, payload.coordinator_party))
            if truth is not None and truth.prepare is None:
                truth.prepare = payload
        if to_party in self.hostile and isinstance(payload, Vote):
            self.votes_to_hostile.append((sender, envelope))
            if payload.vote is VoteChoice.YES:
                self.violation(
                    "SOVEREIGNTY",
                    f"{sender} voted YES on hostile {payload.coordinator_party}'s PREPARE "
                    f"{payload.transfer_id}: a hostile member holds none of those serials",
                )

    def publish_inbox(self, party: str, data: bytes, *, faulty: bool = True) -> None:
        self.captured.append(data)
        if party in self.hostile:
            from tests.sim import hostile

            hostile.on_inbox(self, party, data)
            return
        if party not in self.nodes:
            return
        in_fault_window = faulty and self.time_ms < FAULT_WINDOW_MS
        if in_fault_window and self.rng.random() < self.faults.drop_probability:
            return
        copies = (
            2 if in_fault_window and self.rng.random() < self.faults.duplicate_probability else 1
        )
        for _ in range(copies):
            arrival = self.time_ms + self._latency(INBOX_LATENCY_MAX_MS)
            self.schedule(arrival, "deliver", (party, data))

    def _on_deliver(self, party: str, data: bytes) -> None:
        node = self.nodes[party]
        if not node.up:
            node.backlog.append(data)
            return
        try:
            node.deliver(data)
        except NodeCrashed:
            node.backlog.append(data)  # its offset was never committed: Kafka redelivers

    def _on_ack(self, party: str, epoch: int, row_id: int) -> None:
        node = self.nodes[party]
        if node.up and node.epoch == epoch:
            node.sent.add(row_id)
            node.in_flight.discard(row_id)

    def _on_append(self, party: str, epoch: int, row_id: int, topic: str, data: bytes) -> None:
        node = self.nodes[party]
        crashed_since = node.epoch != epoch or not node.up
        if crashed_since and self.rng.random() < LOST_APPEND_PROBABILITY:
            return  # never acknowledged, never written; the outbox row stays unsent
        if topic == UNIT_LOG_TOPIC:
            self.append_unit_record(data)
        else:
            self.append(data, genuine=True)
        self.schedule(self.time_ms + self.rng.randint(1, 10), "ack", (party, epoch, row_id))

    def append(self, data: bytes, *, genuine: bool) -> None:
        self.decision_log.append(LogRecord(data, genuine))
        self.captured.append(data)
        for party in self.parties:
            lag = self.rng.randint(0, CONSUMER_LAG_MAX_MS)
            if self.rng.random() < self.faults.spike_probability:
                lag += self.rng.randint(0, DELAY_SPIKE_MAX_MS)
            self.schedule(self.time_ms + lag, "read", (party,))

    def append_unit_record(self, data: bytes) -> None:
        self.unit_log.append(LogRecord(data, genuine=True))
        self.captured.append(data)
        for party in self.parties:
            lag = self.rng.randint(0, CONSUMER_LAG_MAX_MS)
            self.schedule(self.time_ms + lag, "read", (party,))

    def _on_read(self, party: str) -> None:
        node = self.nodes[party]
        if node.up:
            try:
                node.read_decisions()
            except NodeCrashed:
                return
            node.read_index()

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
        coordinates = any(
            isinstance(record.state, CoordinatorState)
            for record in node.transfer_store.transfers.values()
        )
        if coordinates and self.rng.random() < self.faults.permanent_crash_probability:
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
        node.start()  # a new process over the same database
        # Recovery order from PROTOCOL.md: read the decision partition first, then
        # republish the unsent outbox, then consume the inbox backlog.
        try:
            node.read_decisions()
        except NodeCrashed:
            return
        node.read_index()
        self.schedule(self.time_ms, "relay", (party, node.epoch))
        backlog, node.backlog = node.backlog, []
        for data in backlog:
            self.schedule(self.time_ms + self.rng.randint(1, 20), "deliver", (party, data))
        self.schedule(self.time_ms + TICK_INTERVAL_MS, "tick", (party, node.epoch))

    # -- hostile members and replays --------------------------------------------------

    def _on_attack(self, attack: str) -> None:
        from tests.sim import hostile

        hostile.attack(self, attack)

    def _on_hostile_decide(self, party: str, data: bytes) -> None:
        self.append(data, genuine=False)

    def _on_hostile_unit_record(self, data: bytes) -> None:
        self.append_unit_record(data)

    def _on_replay(self) -> None:
        """The injector (not a member) replays a record byte for byte to an inbox."""
        if not self.captured:
            return
        data = self.rng.choice(self.captured)
        arrival = self.time_ms + self._latency(INBOX_LATENCY_MAX_MS)
        self.schedule(arrival, "deliver", (self.rng.choice(self.parties), data))

    # -- driving a whole seed --------------------------------------------------------

    def termination_check_ms(self) -> int:
        deadlines = [
            int((t.deadline - factories.EPOCH).total_seconds() * 1000)
            for t in self.transfers.values()
        ]
        last_deadline = max(deadlines, default=0) + DECISION_GRACE_MS + 2 * CLOCK_SKEW_MAX_MS
        # Every crash happens inside the fault window and every restart that is
        # going to happen has happened by its end plus the longest downtime.
        return max(last_deadline, FAULT_WINDOW_MS + DOWNTIME_MAX_MS) + RECOVERY_MS

    def run(self) -> None:
        """Faults, then the termination horizon, then every node back and quiet."""
        from tests.sim import checker

        with _variant_installed(self.variant), _logs_recorded(self.logged_errors):
            self._plan()
            self.started = True
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
            for node in self.nodes.values():
                node.read_index()  # what the e2e invariant waits for: the logs read to their end
            checker.check_final(self)


def loa_of(party: str) -> str:
    return f"LOA-{party}-1"


def is_final(state: State) -> bool:
    if isinstance(state, CoordinatorState):
        return state.is_decided
    return state.is_final


def _accept_any(envelope: Envelope) -> None:
    """A verifier that checks nothing: what a broken node would use."""
