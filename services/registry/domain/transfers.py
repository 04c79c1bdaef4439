"""Reservations that lock units for a cross-border transfer until it commits or aborts."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from registry.domain.authorisations import Purpose
from registry.domain.errors import DomainError, ReasonCode

TRANSFER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
_TRANSFER_ID = re.compile(TRANSFER_ID_PATTERN)


def check_transfer_id(transfer_id: str) -> list[ReasonCode]:
    return [] if _TRANSFER_ID.fullmatch(transfer_id) else [ReasonCode.MALFORMED_IDENTIFIER]


class TransferDirection(StrEnum):
    OUTGOING = "OUTGOING"
    INCOMING = "INCOMING"


class ReservationState(StrEnum):
    PENDING = "PENDING"
    FINALISED = "FINALISED"
    RELEASED = "RELEASED"


@dataclass(frozen=True, slots=True)
class Reservation:
    """This registry's side of one cross-border transfer.

    Outgoing: ``account_id`` is the sending account and ``counterparty_party`` the
    acquiring Party. Incoming: ``account_id`` is the destination account and
    ``counterparty_party`` the transferring Party.
    """

    transfer_id: str
    direction: TransferDirection
    account_id: str
    counterparty_party: str
    purpose: Purpose
    quantity: int
    omge_quantity: int
    first_transfer_quantity: int
    state: ReservationState
    created_at: datetime
    updated_at: datetime
    acquiring_entity: str | None = None

    def finalised(self, at: datetime) -> Reservation:
        self._check_pending()
        return replace(self, state=ReservationState.FINALISED, updated_at=at)

    def released(self, at: datetime) -> Reservation:
        self._check_pending()
        return replace(self, state=ReservationState.RELEASED, updated_at=at)

    def _check_pending(self) -> None:
        if self.state is ReservationState.FINALISED:
            raise DomainError(
                ReasonCode.TRANSFER_ALREADY_FINALISED,
                f"transfer {self.transfer_id} is already finalised",
            )
        if self.state is ReservationState.RELEASED:
            raise DomainError(
                ReasonCode.TRANSFER_ALREADY_RELEASED,
                f"transfer {self.transfer_id} was already released",
            )
