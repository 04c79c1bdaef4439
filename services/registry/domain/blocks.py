"""Serial blocks: a range of serials sharing one attribute set, and how they split.

A partial transfer, use or cancellation splits a block by one deterministic
rule: the holder keeps the lower range, the upper range moves. Carving an
explicit serial range out of a block keeps the block's row identity on the
lowest piece, so a split never renumbers what stays.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

from a6wire.identifiers import (
    SERIAL_MAX,
    SERIAL_MIN,
    VINTAGE_MAX,
    VINTAGE_MIN,
    format_unique_identifier,
    is_cooperative_approach_id,
    is_party_code,
    is_registry_id,
)
from registry.domain.errors import DomainError, ReasonCode


class BlockStatus(StrEnum):
    HELD = "HELD"
    # Locked by an outgoing cross-border transfer: still counted here, cannot move.
    RESERVED = "RESERVED"
    # Held pending credit for an incoming transfer: not yet a holding.
    INCOMING = "INCOMING"
    RETIRED = "RETIRED"
    CANCELLED = "CANCELLED"
    TRANSFERRED_OUT = "TRANSFERRED_OUT"


# Statuses under which a serial is present in this registry; a serial must never
# be present twice, and an incoming block may not overlap any of them.
PRESENT_STATUSES = frozenset(
    {
        BlockStatus.HELD,
        BlockStatus.RESERVED,
        BlockStatus.INCOMING,
        BlockStatus.RETIRED,
        BlockStatus.CANCELLED,
    }
)


class TransferRole(StrEnum):
    DELIVERY = "DELIVERY"
    OMGE = "OMGE"


@dataclass(frozen=True, slots=True)
class BlockAttributes:
    """Everything every unit of a block shares (DOMAIN.md, "Block attributes")."""

    cooperative_approach_id: str
    originating_registry_id: str
    first_transferring_party: str
    vintage: int
    metric: str
    gwp_values: str
    mitigation_type: str
    sector: str
    activity_type: str
    first_transfer_done: bool = False
    authorisation_id: str | None = None
    authorisation_version: int | None = None

    def malformations(self) -> list[ReasonCode]:
        reasons: list[ReasonCode] = []
        if not (
            is_cooperative_approach_id(self.cooperative_approach_id)
            and is_registry_id(self.originating_registry_id)
            and is_party_code(self.first_transferring_party)
            and VINTAGE_MIN <= self.vintage <= VINTAGE_MAX
        ):
            reasons.append(ReasonCode.MALFORMED_IDENTIFIER)
        if not self.metric or (self.authorisation_id is None) != (
            self.authorisation_version is None
        ):
            reasons.append(ReasonCode.MALFORMED_BLOCK)
        return reasons

    def unit_identifier(self, serial: int) -> str:
        return format_unique_identifier(
            self.cooperative_approach_id,
            self.originating_registry_id,
            self.first_transferring_party,
            serial,
            self.vintage,
        )


def range_malformations(first_serial: int, last_serial: int) -> list[ReasonCode]:
    """Check 2 for the range: first <= last (a positive quantity), serials in bounds."""
    if last_serial < first_serial:
        return [ReasonCode.NON_POSITIVE_QUANTITY]
    if not SERIAL_MIN <= first_serial <= last_serial <= SERIAL_MAX:
        return [ReasonCode.MALFORMED_BLOCK]
    return []


@dataclass(frozen=True, slots=True)
class SerialBlock:
    """A block as this registry records it; ``block_id`` is None until stored."""

    account_id: str
    status: BlockStatus
    first_serial: int
    last_serial: int
    attributes: BlockAttributes
    block_id: int | None = None
    transfer_id: str | None = None
    transfer_role: TransferRole | None = None

    def __post_init__(self) -> None:
        # A real exception, not assert: a broken invariant must stop the command
        # even under python -O.
        if range_malformations(self.first_serial, self.last_serial):
            raise DomainError(
                range_malformations(self.first_serial, self.last_serial)[0],
                f"serial range {self.first_serial}-{self.last_serial} is malformed",
            )

    @property
    def quantity(self) -> int:
        return self.last_serial - self.first_serial + 1

    @property
    def first_identifier(self) -> str:
        return self.attributes.unit_identifier(self.first_serial)

    @property
    def last_identifier(self) -> str:
        return self.attributes.unit_identifier(self.last_serial)

    def overlaps(self, first_serial: int, last_serial: int) -> bool:
        return self.first_serial <= last_serial and first_serial <= self.last_serial

    def moved(
        self,
        *,
        account_id: str | None = None,
        status: BlockStatus,
        transfer_id: str | None = None,
        transfer_role: TransferRole | None = None,
    ) -> SerialBlock:
        return replace(
            self,
            account_id=self.account_id if account_id is None else account_id,
            status=status,
            transfer_id=transfer_id,
            transfer_role=transfer_role,
        )

    def to_spec(self) -> BlockSpec:
        return BlockSpec(self.first_serial, self.last_serial, self.attributes)

    @property
    def key(self) -> tuple[str, int]:
        """Unique among blocks present in one registry; a split never changes a row's key."""
        return (self.attributes.originating_registry_id, self.first_serial)


def merge_adjacent(lower: SerialBlock, upper: SerialBlock) -> SerialBlock | None:
    """One block for two touching HELD blocks of one account and attribute set, else None."""
    if (
        lower.last_serial + 1 == upper.first_serial
        and lower.account_id == upper.account_id
        and lower.status is BlockStatus.HELD
        and upper.status is BlockStatus.HELD
        and lower.attributes == upper.attributes
    ):
        return replace(lower, last_serial=upper.last_serial)
    return None


def split_off_upper(block: SerialBlock, quantity: int) -> tuple[SerialBlock | None, SerialBlock]:
    """Split ``quantity`` units off the top of a block: (kept lower part or None, upper part).

    The kept part keeps the block's identity; the upper part is new (no id) unless
    the whole block moves.
    """
    if not 0 < quantity <= block.quantity:
        raise DomainError(
            ReasonCode.INSUFFICIENT_UNITS,
            f"cannot split {quantity} units off a block of {block.quantity}",
        )
    if quantity == block.quantity:
        return None, block
    boundary = block.last_serial - quantity
    kept = replace(block, last_serial=boundary)
    upper = replace(block, first_serial=boundary + 1, block_id=None)
    return kept, upper


def carve(
    block: SerialBlock, first_serial: int, last_serial: int
) -> tuple[SerialBlock | None, SerialBlock, SerialBlock | None]:
    """Cut [first_serial, last_serial] out of a block: (lower rest, carved part, upper rest).

    The lowest piece keeps the block's identity; the others are new.
    """
    first = max(first_serial, block.first_serial)
    last = min(last_serial, block.last_serial)
    if first > last:
        raise DomainError(ReasonCode.SERIALS_NOT_HELD, "the range does not overlap the block")
    lower = replace(block, last_serial=first - 1) if first > block.first_serial else None
    middle = replace(
        block, first_serial=first, last_serial=last, block_id=None if lower else block.block_id
    )
    upper = (
        replace(block, first_serial=last + 1, block_id=None) if last < block.last_serial else None
    )
    return lower, middle, upper


@dataclass(frozen=True, slots=True)
class BlockSpec:
    """A block in plain, serialisable form, as the protocol carries it between registries."""

    first_serial: int
    last_serial: int
    attributes: BlockAttributes

    @property
    def quantity(self) -> int:
        return self.last_serial - self.first_serial + 1

    def malformations(self) -> list[ReasonCode]:
        return range_malformations(self.first_serial, self.last_serial) + (
            self.attributes.malformations()
        )

    def to_dict(self) -> dict[str, Any]:
        """A flat JSON-ready mapping."""
        return {
            "first_serial": self.first_serial,
            "last_serial": self.last_serial,
            **asdict(self.attributes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BlockSpec:
        fields = dict(data)
        first_serial = int(fields.pop("first_serial"))
        last_serial = int(fields.pop("last_serial"))
        try:
            attributes = BlockAttributes(**fields)
        except TypeError as error:
            raise DomainError(ReasonCode.MALFORMED_BLOCK, f"block fields: {error}") from error
        return cls(first_serial, last_serial, attributes)
