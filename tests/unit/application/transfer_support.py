"""Two (or more) registry nodes wired by hand on in-memory twins, with a hand-cranked bus.

The bus keeps the production shape: each node's outbox rows are published in
order to an inbox queue per Party or to one decision log that every node reads
in the same order; every delivery goes through the real ``TransferBus`` checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any
from uuid import UUID, uuid4

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from a6wire.directory import FederationDirectory, FederationMember
from a6wire.keys import generate_private_key, public_key_base64
from a6wire.topics import DECISION_TOPIC, inbox_topic
from a6wire.verification import verify_signature
from registry.adapters.in_memory import InMemoryStore
from registry.adapters.messaging import InMemoryQuarantine
from registry.adapters.transfer_unit_of_work import (
    InMemoryTransferStore,
    InMemoryTransferUnitOfWork,
    OutboxMessage,
)
from registry.application.commands import IssueUnits
from registry.application.transfers import (
    FederationView,
    InitiateTransfer,
    InitiationOutcome,
    KeySigner,
    MessagePosition,
    Transfers,
    TransferView,
)
from registry.domain.authorisations import Purpose
from registry.domain.selection import QuantitySelection
from registry.entrypoints.bus import TransferBus
from tests.unit.application.support import (
    PARTNER,
    PARTNER_REGISTRY_ID,
    PARTY,
    REGISTRY_ID,
    FakeClock,
    Ledger,
    authorisation,
    line,
    set_up_registry,
)

SENDER_ACCOUNT = "CHE-A"
RECEIVER_ACCOUNT = "GHA-A"


@dataclass
class HandNode:
    party: str
    registry_id: str
    key: Ed25519PrivateKey
    clock: FakeClock
    store: InMemoryStore = field(default_factory=InMemoryStore)
    transfer_store: InMemoryTransferStore = field(default_factory=InMemoryTransferStore)
    published: int = 0
    transfers: Transfers | None = None
    bus: TransferBus | None = None
    quarantine: InMemoryQuarantine = field(default_factory=InMemoryQuarantine)

    def uow(self) -> InMemoryTransferUnitOfWork:
        return InMemoryTransferUnitOfWork(self.store, self.transfer_store)

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.uow(), self.clock)

    @property
    def service(self) -> Transfers:
        assert self.transfers is not None
        return self.transfers

    def view(self, transfer_id: UUID) -> TransferView:
        view = self.service.get_transfer_view(transfer_id)
        assert view is not None
        return view

    def held(self, account_id: str) -> int:
        return self.ledger.held(account_id)


@dataclass
class Federation:
    nodes: dict[str, HandNode]
    directory: FederationDirectory
    clock: FakeClock
    inboxes: dict[str, list[bytes]] = field(default_factory=dict)
    decision_log: list[bytes] = field(default_factory=list)
    decision_read: dict[str, int] = field(default_factory=dict)
    captured: list[OutboxMessage] = field(default_factory=list)
    offset: int = 0

    def node(self, party: str) -> HandNode:
        return self.nodes[party]

    def publish(self) -> int:
        """Move every node's new outbox rows onto the bus, in row order."""
        moved = 0
        for node in self.nodes.values():
            rows = node.transfer_store.outbox[node.published :]
            node.published += len(rows)
            for row in rows:
                self.captured.append(row)
                moved += 1
                if row.topic == DECISION_TOPIC:
                    self.decision_log.append(row.value)
                else:
                    party = row.topic.split(".")[2]
                    self.inboxes.setdefault(party, []).append(row.value)
        return moved

    def position(self, topic: str) -> MessagePosition:
        self.offset += 1
        return MessagePosition(topic, 0, self.offset)

    def deliver_inbox(self, party: str, data: bytes) -> None:
        bus = self.nodes[party].bus
        assert bus is not None
        bus.handle_inbox_bytes(data, self.position(inbox_topic(party)))

    def read_decisions(self, party: str) -> None:
        bus = self.nodes[party].bus
        assert bus is not None
        while self.decision_read.get(party, 0) < len(self.decision_log):
            index = self.decision_read.get(party, 0)
            self.decision_read[party] = index + 1
            bus.handle_decision_bytes(self.decision_log[index], self.position(DECISION_TOPIC))

    def run(self, *, hold_inbox_of: tuple[str, ...] = ()) -> None:
        """Publish and deliver until nothing moves (inboxes of ``hold_inbox_of`` wait)."""
        for _ in range(100):
            self.publish()
            progressed = False
            for party in self.nodes:
                if party in hold_inbox_of:
                    continue
                queue = self.inboxes.get(party, [])
                while queue:
                    self.deliver_inbox(party, queue.pop(0))
                    progressed = True
                before = self.decision_read.get(party, 0)
                self.read_decisions(party)
                progressed |= self.decision_read.get(party, 0) != before
            if not progressed and not self.publish():
                return
        raise AssertionError("the federation did not quiesce")

    def tick(self, delta: timedelta) -> None:
        self.clock.advance(delta)
        for node in self.nodes.values():
            node.service.tick()


def federation(
    parties: tuple[tuple[str, str], ...] = ((PARTY, REGISTRY_ID), (PARTNER, PARTNER_REGISTRY_ID)),
    *,
    suspended: set[str] | None = None,
) -> Federation:
    """``suspended``: the Parties the directory suspends, read at each check (a test
    adds to it to suspend a member mid-transfer, as a new directory version would)."""
    clock = FakeClock()
    nodes = {
        party: HandNode(party, registry_id, generate_private_key(), clock)
        for party, registry_id in parties
    }
    directory = FederationDirectory(
        members=tuple(
            FederationMember(
                party=node.party,
                registry_id=node.registry_id,
                public_key_base64=public_key_base64(node.key),
                inbox_topic=inbox_topic(node.party),
            )
            for node in nodes.values()
        )
    )

    def registry_of(party: str) -> str | None:
        return directory.member(party).registry_id if directory.is_member(party) else None

    suspended_now = suspended if suspended is not None else set()

    def member_refusals(party: str) -> tuple[str, ...]:
        return ("MEMBER_SUSPENDED",) if party in suspended_now else ()

    for node in nodes.values():
        node.transfers = Transfers(
            node.uow,
            clock,
            KeySigner(node.party, node.key),
            partial(verify_signature, directory=directory),
            FederationView(
                node.party,
                node.registry_id,
                registry_of,
                inbox_topic,
                DECISION_TOPIC,
                member_refusals=member_refusals,
            ),
        )
        node.bus = TransferBus(node.transfers, directory, node.quarantine)
    return Federation(nodes, directory, clock)


def set_up_pair(fed: Federation, *, issue: int = 100) -> None:
    sender, receiver = fed.node(PARTY), fed.node(PARTNER)
    set_up_registry(sender.ledger, loa=authorisation(), accounts=(SENDER_ACCOUNT, "CHE-B"))
    set_up_registry(
        receiver.ledger,
        party=PARTNER,
        registry_id=PARTNER_REGISTRY_ID,
        accounts=(RECEIVER_ACCOUNT,),
    )
    if issue:
        sender.ledger.run(IssueUnits(SENDER_ACCOUNT, (line(issue),)))


def request(quantity: int = 40, **overrides: object) -> InitiateTransfer:
    values: dict[str, object] = {
        "transfer_id": uuid4(),
        "from_account_id": SENDER_ACCOUNT,
        "to_party": PARTNER,
        "to_account_id": RECEIVER_ACCOUNT,
        "selection": QuantitySelection(quantity),
        "authorisation_id": "LOA-CHE-1",
        "purpose": Purpose.NDC,
    }
    values.update(overrides)
    return InitiateTransfer(**values)  # type: ignore[arg-type]


def initiate(fed: Federation, **overrides: Any) -> InitiationOutcome:
    return fed.node(PARTY).service.initiate_transfer(request(**overrides))
