"""Ports of the cross-border transfer handlers, as Protocols; adapters implement them.

A transfer handler runs ONE unit of work in which the ledger handlers, the
protocol state, the winning decision, the outbox rows and the inbox record all
commit together. ``TransferUnitOfWork`` is therefore the ledger's
``UnitOfWork`` plus four repositories, and it is re-entrant: a ``with uow:``
inside an open one (the ledger handlers open their own) is a savepoint, and
its ``commit`` only releases the savepoint. The outer ``commit`` is the one
real commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol
from uuid import UUID

from a6wire.messages import Decision, Done, Envelope, Prepare, Vote
from registry.application.ports import UnitOfWork
from registry.protocol.arbiter import TransferKey
from registry.protocol.coordinator import CoordinatorState
from registry.protocol.effects import Role
from registry.protocol.participant import ParticipantState


class TransferStatus(StrEnum):
    """What an operator needs to know about a transfer at this node."""

    PENDING = "PENDING"
    COMMITTED = "COMMITTED"
    ABORTED = "ABORTED"


# The phase of a transfer this node refused itself, before any PREPARE left.
REFUSED_BEFORE_PREPARE_PHASE = "REFUSED"


@dataclass(frozen=True, slots=True)
class BlockSummary:
    first_identifier: str
    last_identifier: str
    quantity: int


@dataclass(frozen=True, slots=True)
class TransferRecord:
    """One transfer as this node stores it.

    ``state`` is the protocol machine's state (persisted as JSON); it is None
    only for a transfer the node's own ledger refused before any PREPARE left,
    which has no protocol state at all. The other fields are denormalised from
    it so that views and lists need no JSON parsing in the database.
    """

    transfer_id: UUID
    coordinator_party: str
    role: Role
    status: TransferStatus
    phase: str
    completed: bool
    from_party: str
    to_party: str
    from_account_id: str
    to_account_id: str
    quantity: int
    blocks: tuple[BlockSummary, ...]
    reasons: tuple[str, ...]
    state: CoordinatorState | ParticipantState | None
    # When the ticker must next deliver a Tick; None when no timer is needed.
    next_wake_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def key(self) -> TransferKey:
        return TransferKey(self.transfer_id, self.coordinator_party)


class TransferStateRepository(Protocol):
    def get(self, key: TransferKey) -> TransferRecord | None:
        """The record, locked against concurrent handlers of the same transfer until commit."""
        ...

    def put(self, record: TransferRecord) -> None:
        """Insert or overwrite the record of ``record.key``."""
        ...

    def find(self, transfer_id: UUID) -> list[TransferRecord]:
        """Every record with this transfer id (normally one), oldest first."""
        ...

    def recent(self, *, status: TransferStatus | None, limit: int) -> list[TransferRecord]:
        """Newest first."""
        ...

    def due(self, now: datetime, limit: int) -> list[TransferKey]:
        """Keys of non-completed transfers whose ``next_wake_at`` has come, oldest first."""
        ...

    def unfinished(self, limit: int) -> list[TransferKey]:
        """Keys of transfers that are not completed, for recovery at start."""
        ...


class DecisionRepository(Protocol):
    """The winning decision record of every transfer that names this Party."""

    def winner(self, key: TransferKey) -> Envelope | None: ...

    def keep(self, key: TransferKey, record: Envelope, read_at: datetime) -> None:
        """Store the first valid record; the caller has checked there is none yet."""
        ...


class OutboxPort(Protocol):
    """The transactional outbox, bound to the unit of work's transaction."""

    def add(
        self, topic: str, key: bytes | None, value: bytes, headers: Mapping[str, str]
    ) -> None: ...


class InboxPort(Protocol):
    """Ids of consumed messages, recorded in the transaction of their effect."""

    def seen_before(self, message_id: str) -> bool: ...

    def record(self, message_id: str, topic: str, partition: int, offset: int) -> None: ...


class TransferUnitOfWork(UnitOfWork, Protocol):
    """The ledger's unit of work plus the transfer repositories; re-entrant (see module)."""

    @property
    def transfers(self) -> TransferStateRepository: ...

    @property
    def decisions(self) -> DecisionRepository: ...

    @property
    def outbox(self) -> OutboxPort: ...

    @property
    def inbox(self) -> InboxPort: ...


class EnvelopeSigner(Protocol):
    """Wraps a payload in an envelope signed with this node's key."""

    @property
    def party(self) -> str: ...

    def seal(self, payload: Prepare | Vote | Decision | Done, sent_at: datetime) -> Envelope: ...


@dataclass(frozen=True, slots=True)
class MessagePosition:
    """Where a consumed message came from, recorded with it in the inbox."""

    topic: str
    partition: int
    offset: int
