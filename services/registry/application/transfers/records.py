"""From a protocol state to the record this node stores and the view its API shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from a6wire.identifiers import format_unique_identifier
from a6wire.messages import Decision, Envelope, Outcome, Prepare, SerialBlock
from registry.application.transfers.ports import (
    REFUSED_BEFORE_PREPARE_PHASE,
    BlockSummary,
    TransferRecord,
    TransferStatus,
)
from registry.protocol import coordinator, participant
from registry.protocol.coordinator import CoordinatorPhase, CoordinatorState
from registry.protocol.effects import Role
from registry.protocol.participant import ParticipantPhase, ParticipantState


def block_summary(block: SerialBlock) -> BlockSummary:
    def identifier(serial: int) -> str:
        return format_unique_identifier(
            block.cooperative_approach_id,
            block.originating_registry_id,
            block.first_transferring_party,
            serial,
            block.vintage,
        )

    return BlockSummary(
        identifier(block.first_serial), identifier(block.last_serial), block.quantity
    )


def _winner_reasons(winner: Envelope | None) -> tuple[str, ...]:
    if winner is not None and isinstance(winner.payload, Decision):
        return tuple(winner.payload.reason_codes)
    return ()


def _coordinator_status(state: CoordinatorState) -> TransferStatus:
    outcome = state.outcome
    if outcome is None:
        return TransferStatus.PENDING
    return TransferStatus.COMMITTED if outcome is Outcome.COMMIT else TransferStatus.ABORTED


_PARTICIPANT_STATUS = {
    ParticipantPhase.UNKNOWN: TransferStatus.PENDING,
    ParticipantPhase.PREPARED: TransferStatus.PENDING,
    # A NO vote is final here: no COMMIT can be valid without this node's YES.
    ParticipantPhase.REFUSED: TransferStatus.ABORTED,
    ParticipantPhase.COMMITTED: TransferStatus.COMMITTED,
    ParticipantPhase.ABORTED: TransferStatus.ABORTED,
}


def _fields_of_prepare(prepare: Prepare) -> dict[str, Any]:
    return {
        "from_party": prepare.coordinator_party,
        "to_party": ",".join(prepare.participants),
        "from_account_id": prepare.from_account_id,
        "to_account_id": prepare.to_account_id,
        "quantity": prepare.quantity,
        "blocks": tuple(block_summary(block) for block in prepare.blocks),
    }


def coordinator_record(
    state: CoordinatorState, now: datetime, created_at: datetime
) -> TransferRecord:
    return TransferRecord(
        transfer_id=state.transfer_id,
        coordinator_party=state.party,
        role=Role.COORDINATOR,
        status=_coordinator_status(state),
        phase=state.phase.value,
        completed=state.phase is CoordinatorPhase.COMPLETED,
        reasons=state.abort_reasons or _winner_reasons(state.winner),
        state=state,
        next_wake_at=coordinator.next_wake(state),
        created_at=created_at,
        updated_at=now,
        **_fields_of_prepare(state.prepare),
    )


def participant_record(
    state: ParticipantState, now: datetime, created_at: datetime
) -> TransferRecord:
    prepare = state.prepare_payload
    fields: dict[str, Any] = (
        _fields_of_prepare(prepare)
        if prepare is not None
        else {
            # Decided before its PREPARE arrived: only the decision is known.
            "from_party": state.coordinator_party,
            "to_party": state.party,
            "from_account_id": "",
            "to_account_id": "",
            "quantity": 0,
            "blocks": (),
        }
    )
    return TransferRecord(
        transfer_id=state.transfer_id,
        coordinator_party=state.coordinator_party,
        role=Role.PARTICIPANT,
        status=_PARTICIPANT_STATUS[state.phase],
        phase=state.phase.value,
        completed=state.phase in (ParticipantPhase.COMMITTED, ParticipantPhase.ABORTED),
        reasons=state.vote_reasons or _winner_reasons(state.winner),
        state=state,
        next_wake_at=participant.next_wake(state),
        created_at=created_at,
        updated_at=now,
        **fields,
    )


@dataclass(frozen=True, slots=True)
class RefusedRequest:
    """What a refused request said, for the record of a transfer that never started."""

    transfer_id: UUID
    party: str
    to_party: str
    from_account_id: str
    to_account_id: str
    quantity: int


def refused_record(
    request: RefusedRequest, reasons: tuple[str, ...], now: datetime
) -> TransferRecord:
    return TransferRecord(
        transfer_id=request.transfer_id,
        coordinator_party=request.party,
        role=Role.COORDINATOR,
        status=TransferStatus.ABORTED,
        phase=REFUSED_BEFORE_PREPARE_PHASE,
        completed=True,
        from_party=request.party,
        to_party=request.to_party,
        from_account_id=request.from_account_id,
        to_account_id=request.to_account_id,
        quantity=request.quantity,
        blocks=(),
        reasons=reasons,
        state=None,
        next_wake_at=None,
        created_at=now,
        updated_at=now,
    )


def record_of(
    state: CoordinatorState | ParticipantState, now: datetime, previous: TransferRecord | None
) -> TransferRecord:
    created_at = previous.created_at if previous is not None else now
    if isinstance(state, CoordinatorState):
        return coordinator_record(state, now, created_at)
    return participant_record(state, now, created_at)


@dataclass(frozen=True, slots=True)
class TransferView:
    """The API's view of one transfer at this node."""

    record: TransferRecord

    def to_dict(self) -> dict[str, Any]:
        record = self.record
        return {
            "transfer_id": str(record.transfer_id),
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
            "created_at": record.created_at.isoformat(),
            "updated_at": record.updated_at.isoformat(),
        }
