"""The append-only audit trail, by block (first and last identifier) or by one serial."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from a6wire.identifiers import parse_unique_identifier
from registry.application import handlers
from registry.domain.audit import AuditAction, AuditEntry
from registry.domain.errors import ReasonCode
from registry.entrypoints.api.auth import Reader
from registry.entrypoints.api.dependencies import NodeDep, execute
from registry.entrypoints.api.errors import ApiError
from registry.entrypoints.api.schemas import UniqueIdentifier

router = APIRouter(prefix="/audit", tags=["audit"])

_FIRST_HELP = "a unit's unique identifier: that serial's trail, or the first of a block"
_LAST_HELP = "the block's last unique identifier; omit it for one serial"


class AuditEntryOut(BaseModel):
    occurred_at: datetime
    action: AuditAction
    first_identifier: str
    last_identifier: str
    quantity: int
    from_account_id: str | None
    to_account_id: str | None
    transfer_id: str | None
    counterparty_party: str | None

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryOut:
        return cls(
            occurred_at=entry.occurred_at,
            action=entry.action,
            first_identifier=entry.first_identifier,
            last_identifier=entry.last_identifier,
            quantity=entry.quantity,
            from_account_id=entry.from_account_id,
            to_account_id=entry.to_account_id,
            transfer_id=entry.transfer_id,
            counterparty_party=entry.counterparty_party,
        )


@router.get("", response_model=list[AuditEntryOut])
def audit_trail(
    node: NodeDep,
    _: Reader,
    first_identifier: Annotated[UniqueIdentifier, Query(description=_FIRST_HELP)],
    last_identifier: Annotated[UniqueIdentifier | None, Query(description=_LAST_HELP)] = None,
) -> list[AuditEntryOut]:
    first = parse_unique_identifier(first_identifier)
    last = parse_unique_identifier(last_identifier or first_identifier)
    if first.originating_registry_id != last.originating_registry_id or first.serial > last.serial:
        raise ApiError(
            422,
            ReasonCode.MALFORMED_BLOCK,
            "first and last identifier must be one registry's serials, in order",
        )
    entries = execute(
        node, handlers.audit_trail, first.originating_registry_id, first.serial, last.serial
    )
    return [AuditEntryOut.of(entry) for entry in entries]
