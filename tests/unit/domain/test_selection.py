from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.domain.authorisations import AuthorisationRef
from registry.domain.blocks import BlockStatus, SerialBlock
from registry.domain.errors import DomainError, ReasonCode
from registry.domain.selection import (
    QuantitySelection,
    SerialRangeSelection,
    check_selection,
    pick_by_quantity,
    pick_by_range,
)
from tests.unit.domain.test_blocks import ATTRIBUTES


def held(
    first: int, last: int, block_id: int, status: BlockStatus = BlockStatus.HELD
) -> SerialBlock:
    return SerialBlock("A", status, first, last, ATTRIBUTES, block_id=block_id)


def no(block: SerialBlock) -> list[ReasonCode]:
    return []


@given(sizes=st.lists(st.integers(1, 100), min_size=1, max_size=20), data=st.data())
def test_pick_by_quantity_takes_exactly_and_splits_at_most_one(
    sizes: list[int], data: st.DataObject
) -> None:
    blocks, first = [], 1
    for block_id, size in enumerate(sizes, start=1):
        blocks.append(held(first, first + size - 1, block_id))
        first += size
    quantity = data.draw(st.integers(1, sum(sizes)))
    pick = pick_by_quantity(iter(blocks), quantity, no)
    assert pick.quantity == quantity
    assert len(pick.stays) <= 1
    touched = {block.block_id for block in pick.taken + pick.stays}
    untouched = [block for block in blocks if block.block_id not in touched]
    pieces = sorted(pick.taken + pick.stays + untouched, key=lambda block: block.first_serial)
    serials = [s for p in pieces for s in range(p.first_serial, p.last_serial + 1)]
    assert serials == list(range(1, sum(sizes) + 1))


def test_pick_by_quantity_skips_refused_blocks_and_explains_a_shortfall() -> None:
    blocks = [held(1, 10, 1), held(11, 20, 2)]

    def refuse_first(block: SerialBlock) -> list[ReasonCode]:
        return [ReasonCode.NO_AUTHORISATION] if block.block_id == 1 else []

    assert [
        (b.first_serial, b.last_serial) for b in pick_by_quantity(blocks, 5, refuse_first).taken
    ] == [(16, 20)]
    with pytest.raises(DomainError) as error:
        pick_by_quantity(blocks, 11, refuse_first)
    assert error.value.reason is ReasonCode.INSUFFICIENT_UNITS
    assert ReasonCode.NO_AUTHORISATION in error.value.reasons
    with pytest.raises(DomainError) as nothing:
        pick_by_quantity(blocks[:1], 1, refuse_first)
    assert nothing.value.reason is ReasonCode.NO_AUTHORISATION


def test_pick_by_range_spans_blocks_and_refuses_gaps_and_locks() -> None:
    blocks = [
        held(1, 10, 1),
        held(11, 20, 2),
        held(31, 40, 3),
        held(41, 50, 4, BlockStatus.RESERVED),
    ]
    pick = pick_by_range(blocks, SerialRangeSelection("THA01", 5, 15), no)
    assert [(b.first_serial, b.last_serial) for b in pick.taken] == [(5, 10), (11, 15)]
    assert [(b.first_serial, b.last_serial) for b in pick.stays] == [(1, 4), (16, 20)]
    for first, last, reason in [
        (15, 35, ReasonCode.SERIALS_NOT_HELD),
        (35, 45, ReasonCode.UNITS_LOCKED),
    ]:
        with pytest.raises(DomainError) as error:
            pick_by_range(blocks, SerialRangeSelection("THA01", first, last), no)
        assert error.value.reason is reason


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        (QuantitySelection(0), [ReasonCode.NON_POSITIVE_QUANTITY]),
        (QuantitySelection(-3), [ReasonCode.NON_POSITIVE_QUANTITY]),
        (SerialRangeSelection("THA01", 5, 4), [ReasonCode.NON_POSITIVE_QUANTITY]),
        (SerialRangeSelection("THA01", 0, 4), [ReasonCode.MALFORMED_BLOCK]),
        (QuantitySelection(1), []),
    ],
)
def test_check_selection(
    selection: QuantitySelection | SerialRangeSelection, expected: list[ReasonCode]
) -> None:
    assert check_selection(selection) == expected


def _under(first: int, last: int, block_id: int, loa: str, party: str = "THA") -> SerialBlock:
    attributes = replace(ATTRIBUTES, authorisation_id=loa, first_transferring_party=party)
    return SerialBlock("A", BlockStatus.HELD, first, last, attributes, block_id=block_id)


def test_pick_by_quantity_takes_only_units_the_named_loa_covers() -> None:
    # Oldest first are LOA-1's units; the request names LOA-2, which holds fewer.
    blocks = [_under(1, 10, 1, "LOA-1"), _under(11, 15, 2, "LOA-2"), _under(16, 30, 3, "LOA-1")]
    pick = pick_by_quantity(blocks, 4, no, authorisation=AuthorisationRef("LOA-2"))
    assert [(b.first_serial, b.last_serial) for b in pick.taken] == [(12, 15)]
    assert {b.attributes.authorisation_id for b in pick.taken} == {"LOA-2"}
    with pytest.raises(DomainError) as error:
        pick_by_quantity(blocks, 6, no, authorisation=AuthorisationRef("LOA-2"))
    assert error.value.reason is ReasonCode.INSUFFICIENT_UNITS


def test_pick_by_quantity_never_mixes_two_parties_loas_of_one_id() -> None:
    blocks = [_under(1, 5, 1, "LOA-1", "GHA"), _under(6, 10, 2, "LOA-1", "THA")]
    named = pick_by_quantity(blocks, 5, no, authorisation=AuthorisationRef("LOA-1", "THA"))
    assert {b.attributes.first_transferring_party for b in named.taken} == {"THA"}
    # No Party named: the first covered block's Party is the one, never both.
    with pytest.raises(DomainError):
        pick_by_quantity(blocks, 6, no, authorisation=AuthorisationRef("LOA-1"))


def test_pick_by_range_refuses_units_of_another_loa() -> None:
    blocks = [_under(1, 10, 1, "LOA-1"), _under(11, 20, 2, "LOA-2")]
    selection = SerialRangeSelection("THA01", 5, 15)
    with pytest.raises(DomainError) as error:
        pick_by_range(blocks, selection, no, authorisation=AuthorisationRef("LOA-2"))
    assert error.value.reason is ReasonCode.AUTHORISATION_MISMATCH
    inside = SerialRangeSelection("THA01", 12, 15)
    pick = pick_by_range(blocks, inside, no, authorisation=AuthorisationRef("LOA-2"))
    assert pick.quantity == 4
