"""The bounded wait before a custody check: current once the index read to the logs' end."""

from __future__ import annotations

import asyncio
from typing import Any

from registry.entrypoints.custody import IndexCatchUp

ENDS = {("a6.units", 0): 5, ("a6.decisions", 0): 2}
# Short, so the refusal case ends quickly; nothing here asserts how long anything took.
TEST_CATCH_UP_TIMEOUT_S = 0.3


class _StoredOffsets:
    """Stands in for ``UnitIndex`` where only its stored offsets are read."""

    def __init__(self, offsets: dict[tuple[str, int], int]) -> None:
        self._offsets = offsets

    def offsets(self) -> dict[tuple[str, int], int]:
        return dict(self._offsets)


def gate(stored: dict[tuple[str, int], int]) -> IndexCatchUp:
    index: Any = _StoredOffsets(stored)
    catch_up = IndexCatchUp(index, timeout_s=TEST_CATCH_UP_TIMEOUT_S)

    async def ends() -> dict[tuple[str, int], int]:
        return dict(ENDS)

    catch_up.bind(ends)
    return catch_up


async def test_an_index_at_the_end_is_current_at_once() -> None:
    catch_up = gate({("a6.units", 0): 5, ("a6.decisions", 0): 2})
    await catch_up.load()
    assert await catch_up.wait_until_current()
    lags = await catch_up.lag()
    assert lags is not None
    assert [lag.lag for lag in lags] == [0, 0]


async def test_an_index_that_catches_up_during_the_wait_is_current() -> None:
    catch_up = gate({("a6.units", 0): 3})
    await catch_up.load()

    async def fold_the_rest() -> None:
        await asyncio.sleep(0)
        catch_up.advanced("a6.units", 0, 5)
        catch_up.advanced("a6.decisions", 0, 2)

    waiting = asyncio.create_task(catch_up.wait_until_current())
    await fold_the_rest()
    assert await waiting


async def test_an_index_that_stays_behind_is_not_current_and_says_by_how_much() -> None:
    catch_up = gate({("a6.units", 0): 4})
    await catch_up.load()
    assert not await catch_up.wait_until_current()
    lags = await catch_up.lag()
    assert lags is not None
    assert {(lag.topic, lag.lag) for lag in lags} == {("a6.units", 1), ("a6.decisions", 2)}


async def test_without_the_logs_end_offsets_the_index_is_not_current() -> None:
    index: Any = _StoredOffsets({})
    catch_up = IndexCatchUp(index, timeout_s=TEST_CATCH_UP_TIMEOUT_S)
    assert not await catch_up.wait_until_current()
    assert await catch_up.lag() is None
