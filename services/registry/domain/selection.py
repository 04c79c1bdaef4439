"""Choosing which serials a command moves: by quantity or by an explicit serial range.

Both pickers are pure: they take candidate blocks (in the repository's
deterministic order) and a refusal rule, and return the pieces that move and
the pieces that stay, split by the holder-keeps-the-lower-range rule. Given the
LoA a cross-border transfer names, they move only units that LoA covers: a pick
by quantity passes over other units, a range over them is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

from registry.domain.authorisations import AuthorisationRef
from registry.domain.blocks import (
    BlockStatus,
    SerialBlock,
    carve,
    range_malformations,
    split_off_upper,
)
from registry.domain.errors import DomainError, ReasonCode

Refusal = Callable[[SerialBlock], list[ReasonCode]]


@dataclass(frozen=True, slots=True)
class QuantitySelection:
    """Any held units of the account, optionally only of one approach and/or vintage."""

    quantity: int
    cooperative_approach_id: str | None = None
    vintage: int | None = None


@dataclass(frozen=True, slots=True)
class SerialRangeSelection:
    """Exactly these serials of one originating registry."""

    originating_registry_id: str
    first_serial: int
    last_serial: int

    @property
    def quantity(self) -> int:
        return self.last_serial - self.first_serial + 1


UnitSelection = QuantitySelection | SerialRangeSelection


def check_selection(selection: UnitSelection) -> list[ReasonCode]:
    """Check 5 and the shape of a range: a positive quantity, a well-formed range."""
    if selection.quantity <= 0:
        return [ReasonCode.NON_POSITIVE_QUANTITY]
    if isinstance(selection, SerialRangeSelection):
        return range_malformations(selection.first_serial, selection.last_serial)
    return []


@dataclass(slots=True)
class Pick:
    """The outcome: ``taken`` pieces move; ``stays`` pieces remain where they were.

    A piece with a ``block_id`` is an existing row to update; one without is new.
    """

    taken: list[SerialBlock] = field(default_factory=list)
    stays: list[SerialBlock] = field(default_factory=list)

    @property
    def quantity(self) -> int:
        return sum(block.quantity for block in self.taken)


def covered_by(
    candidates: Iterable[SerialBlock], authorisation: AuthorisationRef
) -> Iterator[SerialBlock]:
    """The candidates under one LoA, lazily.

    With no authorising Party named, the first block under an LoA of that id names
    it, so a pick never mixes two Parties' LoAs that happen to share an id.
    """
    for block in candidates:
        if authorisation.covers(block.attributes):
            if authorisation.authorising_party is None:
                party = block.attributes.first_transferring_party
                authorisation = replace(authorisation, authorising_party=party)
            yield block


def pick_by_quantity(
    candidates: Iterable[SerialBlock],
    quantity: int,
    refuse: Refusal,
    *,
    authorisation: AuthorisationRef | None = None,
) -> Pick:
    """Take ``quantity`` units from eligible blocks in order, splitting only the last one.

    Consumes ``candidates`` lazily and stops once satisfied, so a caller may pass a
    paged query. Raises INSUFFICIENT_UNITS (with the reasons blocks were refused)
    when eligible blocks do not suffice. With ``authorisation``, only blocks under
    that LoA are candidates at all.
    """
    if authorisation is not None:
        candidates = covered_by(candidates, authorisation)
    pick = Pick()
    remaining = quantity
    refusals: list[ReasonCode] = []
    for block in candidates:
        reasons = refuse(block)
        if reasons:
            refusals.extend(reasons)
            continue
        kept, moved = split_off_upper(block, min(remaining, block.quantity))
        if kept is not None:
            pick.stays.append(kept)
        pick.taken.append(moved)
        remaining -= moved.quantity
        if remaining == 0:
            # Stop before pulling another candidate: it may cost a page of rows.
            break
    if remaining > 0:
        # When nothing was eligible the refusals explain why; otherwise it is a shortfall.
        main = refusals[0] if refusals and pick.quantity == 0 else ReasonCode.INSUFFICIENT_UNITS
        raise DomainError(
            main,
            f"{quantity} units requested, {quantity - remaining} eligible units available",
            reasons=[ReasonCode.INSUFFICIENT_UNITS, *refusals],
        )
    return pick


def pick_by_range(
    candidates: Iterable[SerialBlock],
    selection: SerialRangeSelection,
    refuse: Refusal,
    *,
    authorisation: AuthorisationRef | None = None,
) -> Pick:
    """Take exactly the selected serials, which the candidates must cover without gaps.

    ``candidates`` are the account's blocks overlapping the range, of any status.
    With ``authorisation``, a serial not under that LoA is AUTHORISATION_MISMATCH.
    """
    pick = Pick()
    cursor = selection.first_serial
    reasons: list[ReasonCode] = []
    for block in sorted(candidates, key=lambda candidate: candidate.first_serial):
        if block.last_serial < cursor:
            continue
        if block.first_serial > cursor or cursor > selection.last_serial:
            break
        if block.status is not BlockStatus.HELD:
            reasons.append(ReasonCode.UNITS_LOCKED)
        if authorisation is not None and not authorisation.covers(block.attributes):
            reasons.append(ReasonCode.AUTHORISATION_MISMATCH)
        reasons.extend(refuse(block))
        lower, middle, upper = carve(block, selection.first_serial, selection.last_serial)
        pick.stays.extend(piece for piece in (lower, upper) if piece is not None)
        pick.taken.append(middle)
        cursor = middle.last_serial + 1
    if cursor <= selection.last_serial:
        reasons.insert(0, ReasonCode.SERIALS_NOT_HELD)
    if reasons:
        found = tuple(dict.fromkeys(reasons))
        raise DomainError(
            found[0],
            f"serials {selection.first_serial}-{selection.last_serial} of "
            f"{selection.originating_registry_id} cannot be moved",
            reasons=found[1:],
        )
    return pick
