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

When an OIMP authorisation puts the first transfer at the *use or cancellation* of
the units (``FirstTransferDefinition.USE_OR_CANCELLATION``):

- a cross-border transfer of them for OIMP is not their first transfer: the
  transferring Party records no corresponding adjustment, and the units cross the
  border "authorised, not yet first transferred" (a transfer for NDC purposes under
  an LoA that also authorises OIMP stays a first transfer at the border, para 2(a));
- they still count against the cap and owe the OMGE share when they first leave
  their first transferring Party (``is_first_departure``): later, abroad, the Party
  could neither refuse a use beyond its cap nor cancel a share from units it no
  longer holds;
- from another Party they may move on only for OIMP (``onward_transfer_refusals``);
- their use for OIMP or their voluntary cancellation is the first transfer
  (``first_transfer_at``): recorded ``HERE`` in the same transaction when the first
  transferring Party retires them itself, ``BY_NOTICE`` when another Party does, which
  then sends a signed ``FirstTransferNotice`` (6/CMA.4, annex I: the AEF of the
  authorising Party reports the first transfer, so it must learn of it). The
  authorising Party checks the notice (``check_first_transfer_notice``) and records
  its adjustment once per range.

Handlers ask these functions and store what they return; they do not re-derive any
of it.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from registry.domain.adjustments import CorrespondingAdjustment, first_transfer_adjustment
from registry.domain.approaches import CooperativeApproach
from registry.domain.audit import AuditAction, AuditEntry, audit_entry
from registry.domain.authorisations import Authorisation, Purpose
from registry.domain.blocks import BlockAttributes, BlockSpec, SerialBlock
from registry.domain.errors import ReasonCode


class Moment(StrEnum):
    """The movements at which a first transfer can happen."""

    ISSUANCE = "ISSUANCE"
    CROSS_BORDER_TRANSFER = "CROSS_BORDER_TRANSFER"
    USE_OR_CANCELLATION = "USE_OR_CANCELLATION"


class FirstTransferAt(StrEnum):
    """Whether a movement is the units' first transfer, and who records it."""

    # Not a first transfer: already happened, not this Party's, or not at this moment.
    NONE = "NONE"
    # The moving Party is the first transferring one: it records the first transfer now.
    HERE = "HERE"
    # Another Party uses or cancels the units: it tells the first transferring Party
    # with a signed notice, written in the same transaction as the use.
    BY_NOTICE = "BY_NOTICE"


def first_transfer_at(
    attributes: BlockAttributes,
    authorisation: Authorisation | None,
    *,
    party: str,
    moment: Moment,
    purpose: Purpose | None,
) -> FirstTransferAt:
    """Whether ``party`` moving these units at ``moment`` (for ``purpose``, where the
    movement has one) is their first transfer, and where that is recorded.

    Only authorised units (ITMOs) are first transferred, and only once. A cross-border
    transfer by the first transferring Party is the first transfer unless the LoA put
    it earlier (then ``first_transfer_done`` is already set) or, for OIMP, later (at use
    or cancellation). Issuance and use or cancellation are first transfers only where
    the OIMP authorisation defines them so; a use or cancellation by another Party is
    one too, recorded by notice.
    """
    if attributes.first_transfer_done or attributes.authorisation_id is None:
        return FirstTransferAt.NONE
    own = attributes.first_transferring_party == party
    if moment is Moment.CROSS_BORDER_TRANSFER:
        deferred = defers_first_transfer_to_use(attributes, authorisation, purpose)
        return FirstTransferAt.HERE if own and not deferred else FirstTransferAt.NONE
    if authorisation is None or authorisation.authorisation_id != attributes.authorisation_id:
        return FirstTransferAt.NONE
    if moment is Moment.ISSUANCE:
        at_issuance = own and authorisation.first_transfer_at_authorisation_or_issuance
        return FirstTransferAt.HERE if at_issuance else FirstTransferAt.NONE
    # Use or cancellation: an OIMP use or a voluntary cancellation; a use towards an NDC
    # is the using Party's own adjustment, never the units' first transfer.
    if purpose is Purpose.NDC or not authorisation.first_transfer_at_use_or_cancellation:
        return FirstTransferAt.NONE
    return FirstTransferAt.HERE if own else FirstTransferAt.BY_NOTICE


def is_first_transfer(
    attributes: BlockAttributes,
    authorisation: Authorisation | None,
    *,
    party: str,
    moment: Moment,
    purpose: Purpose | None,
) -> bool:
    """Whether ``party`` first transfers these units by this movement, and records it now."""
    return (
        first_transfer_at(attributes, authorisation, party=party, moment=moment, purpose=purpose)
        is FirstTransferAt.HERE
    )


def defers_first_transfer_to_use(
    attributes: BlockAttributes, authorisation: Authorisation | None, purpose: Purpose | None
) -> bool:
    """Whether a cross-border transfer for ``purpose`` leaves these units' first transfer
    to their use or cancellation: an OIMP transfer under an LoA that puts it there."""
    return (
        purpose is Purpose.OIMP
        and authorisation is not None
        and authorisation.authorisation_id == attributes.authorisation_id
        and authorisation.first_transfer_at_use_or_cancellation
    )


def is_first_departure(attributes: BlockAttributes, *, party: str) -> bool:
    """Whether ``party`` sending these units abroad parts with its own ITMOs before their
    first transfer.

    Then they count against the LoA's cap and owe the cooperative approach's OMGE
    share, whether this transfer is their first transfer or (OIMP, first transfer at
    use or cancellation) that comes later abroad: the Party could not refuse that use
    for its cap, nor cancel a share from units it no longer holds.
    """
    return (
        not attributes.first_transfer_done
        and attributes.authorisation_id is not None
        and attributes.first_transferring_party == party
    )


def onward_transfer_refusals(
    attributes: BlockAttributes,
    authorisation: Authorisation | None,
    *,
    transferring_party: str,
    purpose: Purpose,
) -> list[ReasonCode]:
    """Units still waiting for their first transfer at use or cancellation may move on
    from another Party only for OIMP: moved on for an NDC, their first transfer would
    happen where no one could record the authorising Party's adjustment."""
    if (
        not attributes.first_transfer_done
        and attributes.first_transferring_party != transferring_party
        and authorisation is not None
        and authorisation.first_transfer_at_use_or_cancellation
        and purpose is not Purpose.OIMP
    ):
        return [ReasonCode.FIRST_TRANSFER_PENDING_AT_USE]
    return []


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


# A notice names at most this many block ranges; one use or cancellation command
# rarely touches more than a handful of blocks.
NOTICE_BLOCKS_MAX = 1_000


class RetirementAction(StrEnum):
    """The retirements that can be a first transfer under ``use_or_cancellation``."""

    USE_FOR_OIMP = "USE_FOR_OIMP"
    CANCELLATION = "CANCELLATION"


@dataclass(frozen=True, slots=True)
class FirstTransferNotice:
    """What a registry tells the first transferring Party after using or cancelling its
    units, when that is their first transfer (``FirstTransferAt.BY_NOTICE``).

    ``blocks`` are the retired ranges as the using registry holds them; every one
    names ``authorising_party`` as first transferring Party and ``authorisation_id``.
    ``year`` is the year of the use (or of the cancellation).
    """

    notice_id: str
    authorising_party: str
    noticing_party: str
    authorisation_id: str
    authorisation_version: int
    action: RetirementAction
    year: int
    occurred_at: datetime
    blocks: tuple[BlockSpec, ...]


def check_first_transfer_notice(
    notice: FirstTransferNotice,
    authorisation: Authorisation | None,
    transferred_out: Sequence[SerialBlock],
    *,
    own_party: str,
    in_flight: Sequence[SerialBlock] = (),
) -> list[ReasonCode]:
    """Whether this Party (the authorising one) may record the first transfer a notice reports.

    ``authorisation`` is this Party's current version of the LoA the notice names;
    ``transferred_out`` are this registry's TRANSFERRED_OUT blocks overlapping the
    notice's ranges. The notice must come from another Party, name only units
    under this Party's own LoA whose first transfer is their use or cancellation,
    and each range must be units this registry sent abroad and never yet
    recorded as first transferred (the notice is idempotent on the block range:
    a second notice of any of them is refused).

    ``in_flight`` are this registry's blocks still locked in an outgoing transfer
    overlapping the ranges: the using registry may read the COMMIT before this one
    does, so a notice of such units is early (``FIRST_TRANSFER_NOTICE_EARLY``,
    to be retried once the transfer is final here), not wrong.
    """
    reasons: list[ReasonCode] = []
    if notice.noticing_party == own_party or notice.authorising_party != own_party:
        reasons.append(ReasonCode.FIRST_TRANSFER_NOTICE_MISDIRECTED)
    if not 0 < len(notice.blocks) <= NOTICE_BLOCKS_MAX:
        reasons.append(ReasonCode.BATCH_TOO_LARGE)
    if authorisation is None or authorisation.authorising_party != own_party:
        return [*reasons, ReasonCode.NO_AUTHORISATION]
    if not authorisation.first_transfer_at_use_or_cancellation:
        reasons.append(ReasonCode.FIRST_TRANSFER_NOT_AT_USE)
    for spec in notice.blocks:
        units = spec.attributes
        if (
            units.first_transferring_party != own_party
            or units.authorisation_id != authorisation.authorisation_id
        ):
            reasons.append(ReasonCode.FIRST_TRANSFER_NOTICE_NOT_OWN_UNITS)
            continue
        reasons += _range_refusals(spec, transferred_out, in_flight)
    reasons += _overlap_refusals(notice.blocks)
    return list(dict.fromkeys(reasons))


def _range_refusals(
    spec: BlockSpec, transferred_out: Sequence[SerialBlock], in_flight: Sequence[SerialBlock]
) -> list[ReasonCode]:
    units = spec.attributes
    covering = sorted(
        (
            block
            for block in transferred_out
            if block.attributes.originating_registry_id == units.originating_registry_id
            and block.overlaps(spec.first_serial, spec.last_serial)
        ),
        key=lambda block: block.first_serial,
    )
    if any(block.attributes.first_transfer_done for block in covering):
        return [ReasonCode.FIRST_TRANSFER_ALREADY_NOTICED]
    if any(
        block.attributes.cooperative_approach_id != units.cooperative_approach_id
        or block.attributes.vintage != units.vintage
        or block.attributes.authorisation_id != units.authorisation_id
        for block in covering
    ):
        return [ReasonCode.FIRST_TRANSFER_NOTICE_NOT_OWN_UNITS]
    # Every serial of the range must be in a block this registry sent abroad.
    next_serial = spec.first_serial
    for block in covering:
        if block.first_serial > next_serial:
            break
        next_serial = max(next_serial, block.last_serial + 1)
    if next_serial <= spec.last_serial:
        if any(
            block.attributes.originating_registry_id == units.originating_registry_id
            and block.overlaps(spec.first_serial, spec.last_serial)
            for block in in_flight
        ):
            return [ReasonCode.FIRST_TRANSFER_NOTICE_EARLY]
        return [ReasonCode.FIRST_TRANSFER_NOTICE_UNITS_NOT_SENT]
    return []


def _overlap_refusals(blocks: Sequence[BlockSpec]) -> list[ReasonCode]:
    """No serial is named twice in one notice."""
    ordered = sorted(
        blocks, key=lambda spec: (spec.attributes.originating_registry_id, spec.first_serial)
    )
    for lower, upper in itertools.pairwise(ordered):
        if (
            lower.attributes.originating_registry_id == upper.attributes.originating_registry_id
            and upper.first_serial <= lower.last_serial
        ):
            return [ReasonCode.SERIAL_OVERLAP]
    return []
