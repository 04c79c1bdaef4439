"""The in-memory unit index store (the simulator's): the same answers as the pure fold,
and a transaction that is not committed leaves nothing behind."""

from __future__ import annotations

import random

from registry.adapters.in_memory import InMemoryUnitIndexStore, InMemoryUnitIndexUnitOfWork
from registry.domain.custody import (
    Change,
    RangeKey,
    Segment,
    apply_change,
    issuance,
    leaving_circulation,
    movement,
)

KEY = RangeKey("CA0001", "CHE01")
OTHER = RangeKey("CA0001", "GHA01")
PARTIES = ("CHE", "GHA", "THA")
CHANGES_PER_RUN = 200
SERIAL_MAX = 400
RANGE_LENGTH_MAX = 40


def _random_change(rng: random.Random) -> Change:
    first = rng.randint(1, SERIAL_MAX)
    last = first + rng.randint(0, RANGE_LENGTH_MAX)
    kind = rng.randrange(3)
    if kind == 0:
        return issuance(first, last, rng.choice(PARTIES), 2025, "tCO2e")
    if kind == 1:
        return movement(first, last, *rng.sample(PARTIES, 2))
    return leaving_circulation(first, last, rng.choice(PARTIES))


def _fold(store: InMemoryUnitIndexStore, key: RangeKey, change: Change) -> None:
    with InMemoryUnitIndexUnitOfWork(store) as uow:
        old = uow.index.segments(key, change.first, change.last)
        uow.index.replace(key, old, apply_change(old, change))
        uow.commit()


def test_the_store_answers_as_the_pure_fold_does() -> None:
    rng = random.Random(7)
    store = InMemoryUnitIndexStore()
    reference: list[Segment] = []
    for _ in range(CHANGES_PER_RUN):
        change = _random_change(rng)
        _fold(store, KEY, change)
        reference = apply_change(reference, change)
        first = rng.randint(1, SERIAL_MAX)
        last = first + rng.randint(0, RANGE_LENGTH_MAX)
        touching = [s for s in reference if s.first <= last + 1 and s.last >= first - 1]
        with InMemoryUnitIndexUnitOfWork(store) as uow:
            assert uow.index.segments(KEY, first, last) == touching
    with InMemoryUnitIndexUnitOfWork(store) as uow:
        assert [segment for _, segment in uow.index.all_segments()] == reference


def test_an_uncommitted_transaction_leaves_nothing_behind() -> None:
    store = InMemoryUnitIndexStore()
    _fold(store, KEY, issuance(1, 10, "CHE", 2025, "tCO2e"))
    with InMemoryUnitIndexUnitOfWork(store) as uow:
        assert uow.index.claim("U:CHE:1")
        old = uow.index.segments(OTHER, 1, 5)
        uow.index.replace(OTHER, old, apply_change(old, issuance(1, 5, "GHA", 2025, "tCO2e")))
        uow.index.advance("a6.units", 0, 3)
        # Inside the transaction its own writes are visible.
        assert uow.index.segments(OTHER, 1, 5) != []
        assert not uow.index.claim("U:CHE:1")
    with InMemoryUnitIndexUnitOfWork(store) as uow:
        assert uow.index.segments(OTHER, 1, 5) == []
        assert uow.index.offsets() == {}
        assert uow.index.claim("U:CHE:1")
        assert [key for key, _ in uow.index.all_segments()] == [KEY]


def test_offsets_only_move_forward_and_survive_a_new_unit_of_work() -> None:
    store = InMemoryUnitIndexStore()
    with InMemoryUnitIndexUnitOfWork(store) as uow:
        uow.index.advance("a6.units", 0, 5)
        uow.index.advance("a6.units", 0, 3)
        uow.commit()
    with InMemoryUnitIndexUnitOfWork(store) as uow:
        uow.index.advance("a6.units", 0, 4)
        uow.commit()
    with InMemoryUnitIndexUnitOfWork(store) as uow:
        assert uow.index.offsets() == {("a6.units", 0): 5}
