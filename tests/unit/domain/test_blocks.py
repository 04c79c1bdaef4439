from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.domain.approaches import GHG_METRIC
from registry.domain.blocks import (
    BlockAttributes,
    BlockSpec,
    BlockStatus,
    SerialBlock,
    carve,
    merge_adjacent,
    split_off_upper,
)
from registry.domain.errors import DomainError, ReasonCode

ATTRIBUTES = BlockAttributes(
    "CA0001",
    "THA01",
    "THA",
    2025,
    GHG_METRIC,
    "AR5",
    "ER",
    "energy",
    "cookstoves",
    authorisation_id="LOA-1",
    authorisation_version=1,
)


def block(first: int, last: int, block_id: int | None = 7) -> SerialBlock:
    return SerialBlock("A", BlockStatus.HELD, first, last, ATTRIBUTES, block_id=block_id)


def test_identifiers_follow_6_cma_4() -> None:
    held = block(123, 130)
    assert held.first_identifier == "CA0001-THA01-THA-000000123-2025"
    assert held.last_identifier == "CA0001-THA01-THA-000000130-2025"
    assert held.quantity == 8


@pytest.mark.parametrize(
    ("first", "last", "reason"),
    [(5, 4, ReasonCode.NON_POSITIVE_QUANTITY), (0, 4, ReasonCode.MALFORMED_BLOCK)],
)
def test_a_malformed_range_is_refused(first: int, last: int, reason: ReasonCode) -> None:
    with pytest.raises(DomainError) as error:
        block(first, last)
    assert error.value.reason is reason


def test_split_keeps_the_lower_range_with_the_holder() -> None:
    kept, moved = split_off_upper(block(1, 100), 30)
    assert kept is not None
    assert (kept.first_serial, kept.last_serial, kept.block_id) == (1, 70, 7)
    assert (moved.first_serial, moved.last_serial, moved.block_id) == (71, 100, None)


def test_split_of_the_whole_block_moves_it_unchanged() -> None:
    assert split_off_upper(block(1, 10), 10) == (None, block(1, 10))


@pytest.mark.parametrize("quantity", [0, -1, 11])
def test_split_refuses_impossible_quantities(quantity: int) -> None:
    with pytest.raises(DomainError):
        split_off_upper(block(1, 10), quantity)


def test_carve_keeps_identity_on_the_lowest_piece() -> None:
    lower, middle, upper = carve(block(1, 100), 40, 59)
    assert lower is not None
    assert upper is not None
    assert [(p.first_serial, p.last_serial, p.block_id) for p in (lower, middle, upper)] == [
        (1, 39, 7),
        (40, 59, None),
        (60, 100, None),
    ]
    assert carve(block(1, 100), 1, 10)[1].block_id == 7


@given(
    size=st.integers(1, 10_000),
    data=st.data(),
)
def test_split_and_carve_partition_the_serials(size: int, data: st.DataObject) -> None:
    original = block(1000, 1000 + size - 1)
    first = data.draw(st.integers(original.first_serial, original.last_serial))
    last = data.draw(st.integers(first, original.last_serial))
    pieces = [p for p in carve(original, first, last) if p is not None]
    serials = [s for p in pieces for s in range(p.first_serial, p.last_serial + 1)]
    assert serials == list(range(original.first_serial, original.last_serial + 1))
    assert all(p.attributes == original.attributes for p in pieces)
    quantity = data.draw(st.integers(1, size))
    kept, moved = split_off_upper(original, quantity)
    assert moved.quantity == quantity
    assert (kept.quantity if kept else 0) + moved.quantity == size
    if kept is not None:
        assert merge_adjacent(kept, moved) == original


def test_merge_needs_touching_held_blocks_with_one_attribute_set() -> None:
    assert merge_adjacent(block(1, 10), block(11, 20, None)) == block(1, 20)
    assert merge_adjacent(block(1, 10), block(12, 20)) is None
    other = replace(block(11, 20), attributes=replace(ATTRIBUTES, vintage=2024))
    assert merge_adjacent(block(1, 10), other) is None
    locked = replace(block(11, 20), status=BlockStatus.RESERVED)
    assert merge_adjacent(block(1, 10), locked) is None


def test_spec_round_trips_through_a_plain_mapping() -> None:
    spec = block(5, 9).to_spec()
    assert BlockSpec.from_dict(spec.to_dict()) == spec
    assert spec.to_dict()["first_serial"] == 5


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"cooperative_approach_id": "CA1"}, ReasonCode.MALFORMED_IDENTIFIER),
        ({"originating_registry_id": "THA"}, ReasonCode.MALFORMED_IDENTIFIER),
        ({"first_transferring_party": "th"}, ReasonCode.MALFORMED_IDENTIFIER),
        ({"vintage": 1999}, ReasonCode.MALFORMED_IDENTIFIER),
        ({"metric": ""}, ReasonCode.MALFORMED_BLOCK),
        ({"authorisation_version": None}, ReasonCode.MALFORMED_BLOCK),
    ],
)
def test_spec_malformations(change: dict[str, object], reason: ReasonCode) -> None:
    spec = BlockSpec(1, 2, replace(ATTRIBUTES, **change))  # type: ignore[arg-type]
    assert spec.malformations() == [reason]


def test_from_dict_refuses_unknown_fields() -> None:
    data = block(1, 2).to_spec().to_dict() | {"colour": "green"}
    with pytest.raises(DomainError) as error:
        BlockSpec.from_dict(data)
    assert error.value.reason is ReasonCode.MALFORMED_BLOCK
