"""SQL repositories of the transfer protocol, and the outbox/inbox bound to one connection.

Protocol states are stored as JSON (the pydantic models of
``registry.protocol``), with the fields the API filters and shows
denormalised into columns. Nothing here commits: the unit of work does.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Row, and_, insert, select, update

from a6wire.messages import Decision, Envelope
from registry.adapters.messaging.inbox import Inbox
from registry.adapters.messaging.outbox import Outbox
from registry.adapters.messaging.tables import MESSAGING_TABLES
from registry.adapters.transfer_tables import protocol_decisions, protocol_transfers
from registry.application.transfers.ports import BlockSummary, TransferRecord, TransferStatus
from registry.protocol.arbiter import TransferKey
from registry.protocol.coordinator import CoordinatorState
from registry.protocol.effects import Role
from registry.protocol.participant import ParticipantState


def _state_to_json(state: CoordinatorState | ParticipantState | None) -> Any:
    return None if state is None else state.model_dump(mode="json")


def _state_from_json(role: Role, data: Any) -> CoordinatorState | ParticipantState | None:
    if data is None:
        return None
    if role is Role.COORDINATOR:
        return CoordinatorState.model_validate(data)
    return ParticipantState.model_validate(data)


def _values(record: TransferRecord) -> dict[str, Any]:
    return {
        "role": record.role.value,
        "status": record.status.value,
        "phase": record.phase,
        "completed": record.completed,
        "from_party": record.from_party,
        "to_party": record.to_party,
        "from_account_id": record.from_account_id,
        "to_account_id": record.to_account_id,
        "quantity": record.quantity,
        "blocks": [
            {
                "first_identifier": block.first_identifier,
                "last_identifier": block.last_identifier,
                "quantity": block.quantity,
            }
            for block in record.blocks
        ],
        "reasons": list(record.reasons),
        "state": _state_to_json(record.state),
        "next_wake_at": record.next_wake_at,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }


def _record(row: Row[Any]) -> TransferRecord:
    role = Role(row.role)
    return TransferRecord(
        transfer_id=UUID(row.transfer_id),
        coordinator_party=row.coordinator_party,
        role=role,
        status=TransferStatus(row.status),
        phase=row.phase,
        completed=bool(row.completed),
        from_party=row.from_party,
        to_party=row.to_party,
        from_account_id=row.from_account_id,
        to_account_id=row.to_account_id,
        quantity=int(row.quantity),
        blocks=tuple(
            BlockSummary(b["first_identifier"], b["last_identifier"], int(b["quantity"]))
            for b in row.blocks
        ),
        reasons=tuple(row.reasons),
        state=_state_from_json(role, row.state),
        next_wake_at=row.next_wake_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _key_clause(key: TransferKey) -> Any:
    table = protocol_transfers
    return and_(
        table.c.transfer_id == str(key.transfer_id),
        table.c.coordinator_party == key.coordinator_party,
    )


class SqlTransferStateRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def get(self, key: TransferKey) -> TransferRecord | None:
        query = select(protocol_transfers).where(_key_clause(key))
        if self._connection.dialect.name == "postgresql":
            # SQLite serialises writers with BEGIN IMMEDIATE; PostgreSQL needs the row lock.
            query = query.with_for_update()
        row = self._connection.execute(query).first()
        return None if row is None else _record(row)

    def put(self, record: TransferRecord) -> None:
        values = _values(record)
        result = self._connection.execute(
            update(protocol_transfers).where(_key_clause(record.key)).values(**values)
        )
        if result.rowcount == 0:
            self._connection.execute(
                insert(protocol_transfers).values(
                    transfer_id=str(record.transfer_id),
                    coordinator_party=record.coordinator_party,
                    **values,
                )
            )

    def find(self, transfer_id: UUID) -> list[TransferRecord]:
        table = protocol_transfers
        query = (
            select(table)
            .where(table.c.transfer_id == str(transfer_id))
            .order_by(table.c.created_at)
        )
        return [_record(row) for row in self._connection.execute(query)]

    def recent(self, *, status: TransferStatus | None, limit: int) -> list[TransferRecord]:
        table = protocol_transfers
        query = select(table).order_by(table.c.created_at.desc(), table.c.transfer_id).limit(limit)
        if status is not None:
            query = query.where(table.c.status == status.value)
        return [_record(row) for row in self._connection.execute(query)]

    def due(self, now: datetime, limit: int) -> list[TransferKey]:
        table = protocol_transfers
        query = (
            select(table.c.transfer_id, table.c.coordinator_party)
            .where(table.c.next_wake_at.is_not(None), table.c.next_wake_at <= now)
            .order_by(table.c.next_wake_at)
            .limit(limit)
        )
        return [
            TransferKey(UUID(row.transfer_id), row.coordinator_party)
            for row in self._connection.execute(query)
        ]

    def unfinished(self, limit: int) -> list[TransferKey]:
        table = protocol_transfers
        query = (
            select(table.c.transfer_id, table.c.coordinator_party)
            .where(table.c.completed.is_(False))
            .order_by(table.c.created_at)
            .limit(limit)
        )
        return [
            TransferKey(UUID(row.transfer_id), row.coordinator_party)
            for row in self._connection.execute(query)
        ]


class SqlDecisionRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def winner(self, key: TransferKey) -> Envelope | None:
        table = protocol_decisions
        row = self._connection.execute(
            select(table.c.record).where(
                table.c.transfer_id == str(key.transfer_id),
                table.c.coordinator_party == key.coordinator_party,
            )
        ).first()
        return None if row is None else Envelope.model_validate(row.record)

    def keep(self, key: TransferKey, record: Envelope, read_at: datetime) -> None:
        decision = record.payload
        if not isinstance(decision, Decision):
            raise ValueError("only a decision record can win")
        self._connection.execute(
            insert(protocol_decisions).values(
                transfer_id=str(key.transfer_id),
                coordinator_party=key.coordinator_party,
                outcome=decision.outcome.value,
                decided_by=decision.decided_by,
                message_id=str(record.message_id),
                record=record.model_dump(mode="json"),
                read_at=read_at,
            )
        )


class SqlOutboxPort:
    """The messaging edge's outbox writer, on the unit of work's connection."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._outbox = Outbox(MESSAGING_TABLES.outbox)

    def add(self, topic: str, key: bytes | None, value: bytes, headers: Mapping[str, str]) -> None:
        self._outbox.add(self._connection, topic, key, value, headers)


class SqlInboxPort:
    """The messaging edge's inbox dedupe, on the unit of work's connection."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._inbox = Inbox(MESSAGING_TABLES.inbox)

    def seen_before(self, message_id: str) -> bool:
        return self._inbox.seen_before(self._connection, message_id)

    def record(self, message_id: str, topic: str, partition: int, offset: int) -> None:
        self._inbox.record(self._connection, message_id, topic, partition, offset)
