"""The append-only audit trail, one entry per change to a block (check 11)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from registry.domain.authorisations import Purpose
from registry.domain.blocks import SerialBlock


class AuditAction(StrEnum):
    ISSUANCE = "ISSUANCE"
    INTERNAL_TRANSFER = "INTERNAL_TRANSFER"
    USE_TOWARDS_NDC = "USE_TOWARDS_NDC"
    USE_FOR_OIMP = "USE_FOR_OIMP"
    VOLUNTARY_CANCELLATION = "VOLUNTARY_CANCELLATION"
    OMGE_CANCELLATION = "OMGE_CANCELLATION"
    FIRST_TRANSFER = "FIRST_TRANSFER"
    RESERVATION = "RESERVATION"
    RESERVATION_RELEASE = "RESERVATION_RELEASE"
    TRANSFER_OUT = "TRANSFER_OUT"
    INCOMING_HOLD = "INCOMING_HOLD"
    INCOMING_RELEASE = "INCOMING_RELEASE"
    ACQUISITION = "ACQUISITION"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """What happened to one block: keyed by its serial range and first/last identifier."""

    occurred_at: datetime
    action: AuditAction
    originating_registry_id: str
    first_serial: int
    last_serial: int
    first_identifier: str
    last_identifier: str
    quantity: int
    from_account_id: str | None = None
    to_account_id: str | None = None
    transfer_id: str | None = None
    counterparty_party: str | None = None
    # What the AEF (table 3) reports for every action, copied from the block so a
    # report never needs the block itself, which may have been split or moved on.
    cooperative_approach_id: str | None = None
    vintage: int | None = None
    metric: str | None = None
    first_transferring_party: str | None = None
    authorisation_id: str | None = None
    # Where the action has one: transfers, uses, and first transfers.
    purpose: Purpose | None = None
    year_of_use: int | None = None
    # The rest of the block's attributes, for the AEF (migration 0008).
    sector: str | None = None
    activity_type: str | None = None
    mitigation_type: str | None = None
    gwp_values: str | None = None
    authorisation_version: int | None = None
    # On an acquisition: whether the transfer that brought the units was their first
    # transfer, as the transferring registry sent them (None before migration 0008).
    first_transfer: bool | None = None


def audit_entry(
    block: SerialBlock,
    action: AuditAction,
    *,
    at: datetime,
    from_account_id: str | None = None,
    to_account_id: str | None = None,
    transfer_id: str | None = None,
    counterparty_party: str | None = None,
    purpose: Purpose | None = None,
    year_of_use: int | None = None,
    first_transfer: bool | None = None,
) -> AuditEntry:
    attributes = block.attributes
    return AuditEntry(
        occurred_at=at,
        action=action,
        originating_registry_id=attributes.originating_registry_id,
        first_serial=block.first_serial,
        last_serial=block.last_serial,
        first_identifier=block.first_identifier,
        last_identifier=block.last_identifier,
        quantity=block.quantity,
        from_account_id=from_account_id,
        to_account_id=to_account_id,
        transfer_id=transfer_id,
        counterparty_party=counterparty_party,
        cooperative_approach_id=attributes.cooperative_approach_id,
        vintage=attributes.vintage,
        metric=attributes.metric,
        first_transferring_party=attributes.first_transferring_party,
        authorisation_id=attributes.authorisation_id,
        purpose=purpose,
        year_of_use=year_of_use,
        sector=attributes.sector,
        activity_type=attributes.activity_type,
        mitigation_type=attributes.mitigation_type,
        gwp_values=attributes.gwp_values,
        authorisation_version=attributes.authorisation_version,
        first_transfer=first_transfer,
    )
