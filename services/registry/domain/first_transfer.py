"""The first transfer of ITMOs, and what follows from it: the one home of these rules.

Decision 2/CMA.3, annex, para 2(b): the first transfer is the first international
transfer of a mitigation outcome; for units authorised for other international
mitigation purposes (OIMP) the first transferring Party's authorisation may instead
put it at the authorisation, the issuance, or the use or cancellation of the units.
Whatever the moment, the same things follow, and they are decided here only:

- whether a movement *is* the first transfer (``is_first_transfer``);
- the first transferring Party's corresponding adjustment, which adds the units to
  its emissions balance for their vintage year (``adjustments.first_transfer_adjustment``,
  called from ``first_transfer_records``);
- the units count against the authorisation's quantity cap (``cap_quantities``,
  ``cap_refusals``): the cap limits what the Party first transfers;
- a cooperative approach's OMGE share is cancelled (``omge_shares``), from the
  transferred units' own cooperative approach and vintage.

Handlers ask these functions and store what they return; they do not re-derive any
of it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from registry.domain.adjustments import CorrespondingAdjustment, first_transfer_adjustment
from registry.domain.approaches import CooperativeApproach
from registry.domain.audit import AuditAction, AuditEntry, audit_entry
from registry.domain.authorisations import Authorisation, Purpose
from registry.domain.blocks import BlockAttributes, SerialBlock
from registry.domain.errors import ReasonCode


class Moment(StrEnum):
    """The movements at which a first transfer can happen."""

    ISSUANCE = "ISSUANCE"
    CROSS_BORDER_TRANSFER = "CROSS_BORDER_TRANSFER"
    USE_OR_CANCELLATION = "USE_OR_CANCELLATION"


def is_first_transfer(
    attributes: BlockAttributes,
    authorisation: Authorisation | None,
    *,
    party: str,
    moment: Moment,
) -> bool:
    """Whether ``party`` first transfers these units by this movement.

    Only authorised units (ITMOs) are first transferred, only once, and only by their
    first transferring Party. A cross-border transfer is the first transfer unless the
    authorisation put it earlier (then ``first_transfer_done`` is already set); the
    other moments apply only where an OIMP authorisation defines them.
    """
    if (
        attributes.first_transfer_done
        or attributes.authorisation_id is None
        or attributes.first_transferring_party != party
    ):
        return False
    if moment is Moment.CROSS_BORDER_TRANSFER:
        return True
    if authorisation is None or authorisation.authorisation_id != attributes.authorisation_id:
        return False
    if moment is Moment.ISSUANCE:
        return authorisation.first_transfer_at_authorisation_or_issuance
    return authorisation.first_transfer_at_use_or_cancellation


def as_first_transferred(block: SerialBlock) -> SerialBlock:
    return replace(block, attributes=replace(block.attributes, first_transfer_done=True))


@dataclass(frozen=True, slots=True)
class FirstTransferRecords:
    """What a first transfer writes: the block flagged, its adjustment, its audit entry."""

    block: SerialBlock
    adjustment: CorrespondingAdjustment
    audit: AuditEntry


def first_transfer_records(
    party: str,
    block: SerialBlock,
    approach: CooperativeApproach,
    *,
    at: datetime,
    purpose: Purpose,
    transfer_id: str | None = None,
    counterparty_party: str | None = None,
) -> FirstTransferRecords:
    """The first transferring Party adds the units for their vintage year (2/CMA.3 annex,
    chapter III, as DOMAIN.md's action table has it); the audit entry is what the AEF
    reports as the first transfer."""
    done = as_first_transferred(block)
    return FirstTransferRecords(
        block=done,
        adjustment=first_transfer_adjustment(party, done, approach, at=at, transfer_id=transfer_id),
        audit=audit_entry(
            done,
            AuditAction.FIRST_TRANSFER,
            at=at,
            transfer_id=transfer_id,
            counterparty_party=counterparty_party,
            purpose=purpose,
        ),
    )


def cap_quantities(first_transfers: Iterable[SerialBlock]) -> dict[str, int]:
    """Per authorisation id, the units these first transfers count against its cap."""
    quantities: defaultdict[str, int] = defaultdict(int)
    for block in first_transfers:
        if block.attributes.authorisation_id is not None:
            quantities[block.attributes.authorisation_id] += block.quantity
    return dict(quantities)


def cap_refusals(
    authorisation: Authorisation | None, *, counted_quantity: int, quantity: int
) -> list[ReasonCode]:
    """An authorisation's quantity cap limits the units first transferred under it."""
    if (
        authorisation is not None
        and authorisation.quantity_cap is not None
        and counted_quantity + quantity > authorisation.quantity_cap
    ):
        return [ReasonCode.QUANTITY_CAP_EXCEEDED]
    return []


def omge_share_quantity(approach: CooperativeApproach, first_transfer_quantity: int) -> int:
    """Units to cancel for OMGE: ceil(first-transferred units x share), in exact decimals.

    Rounding rule: up, to whole units. ITMOs are held as whole serial numbers, so a
    fraction of a unit cannot be cancelled; rounding down would cancel less than the
    share the cooperative approach set (e.g. 2 % of 40 units is 0.8: rounding down
    cancels nothing), while the OMGE share exists to deliver at least that mitigation
    (the 6.2 guidance only encourages it; an approach that sets it makes it binding,
    DOMAIN.md "Actions"). The share
    is applied once per transfer to each (cooperative approach, vintage) group, so the
    rounding never exceeds one unit per group and per transfer.
    """
    share = approach.omge_share
    if share is None or first_transfer_quantity <= 0:
        return 0
    return math.ceil(Decimal(first_transfer_quantity) * share)


def omge_refusals(block: SerialBlock) -> list[ReasonCode]:
    """Only ITMOs (authorised units) are cancelled for OMGE: units without an LoA
    would deliver no mitigation the AEF can show, as they are no Article 6 units."""
    return [ReasonCode.NO_AUTHORISATION] if block.attributes.authorisation_id is None else []


# An OMGE group: the transferred units' cooperative approach and vintage.
OmgeGroup = tuple[str, int]


def omge_shares(
    first_transfers: Iterable[SerialBlock], approaches: dict[str, CooperativeApproach]
) -> dict[OmgeGroup, int]:
    """Per (cooperative approach, vintage) of the first-transferred units, the OMGE share.

    The share is cancelled from units of that same approach and vintage, never from
    another vintage: the cancelled units then stand for the same mitigation, of the
    same year, as the units transferred. A group with no share is left out.
    """
    quantities: defaultdict[OmgeGroup, int] = defaultdict(int)
    for block in first_transfers:
        attributes = block.attributes
        quantities[(attributes.cooperative_approach_id, attributes.vintage)] += block.quantity
    shares = {
        group: omge_share_quantity(approaches[group[0]], quantity)
        for group, quantity in sorted(quantities.items())
    }
    return {group: share for group, share in shares.items() if share > 0}
