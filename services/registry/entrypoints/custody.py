"""The unit index at the edge: how current it is, and the bounded wait before a custody check.

A receiver checks a PREPARE against its unit index (PROTOCOL.md invariant 8),
which is only as good as what it has read: the sender's own acquisition COMMIT,
or the issuance of the units, may have been appended a moment before the
PREPARE. So before the PREPARE's handler runs, the inbox subscriber takes the
end offsets of every partition the index reads and waits until the index has
read up to them, at most ``CUSTODY_CATCH_UP_TIMEOUT_S``. The wait happens on the
event loop, before the handler's worker thread opens its transaction; a wait
that runs out becomes a NO vote with ``UNIT_INDEX_BEHIND``.

The index's progress is the offsets it wrote with each record it folded in;
they are loaded once at start and then kept here as the index reports them
(``UnitIndex.on_advanced``), so the wait reads no database.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable

from registry.adapters.messaging import PartitionLag
from registry.application.custody import UnitIndex

# How long a receiver waits for its unit index to read the logs to their end
# before it votes on a PREPARE. Well inside a transfer's deadline (30 s by
# default), and long enough for an index that is a few hundred records behind.
CUSTODY_CATCH_UP_TIMEOUT_S = 10.0
CUSTODY_CATCH_UP_POLL_INTERVAL_S = 0.05

EndOffsets = Callable[[], Awaitable[dict[tuple[str, int], int] | None]]


class IndexCatchUp:
    """Where the unit index stands against the logs; see the module docstring."""

    def __init__(
        self,
        index: UnitIndex,
        *,
        timeout_s: float = CUSTODY_CATCH_UP_TIMEOUT_S,
    ) -> None:
        self._end_offsets: EndOffsets | None = None
        self._index = index
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._read: dict[tuple[str, int], int] = {}

    def bind(self, end_offsets: EndOffsets) -> None:
        """Where the logs end (the edge's ``unit_index_end_offsets``), once the edge exists."""
        self._end_offsets = end_offsets

    async def _ends(self) -> dict[tuple[str, int], int] | None:
        return None if self._end_offsets is None else await self._end_offsets()

    async def load(self) -> None:
        """The offsets the index had reached when the node stopped."""
        stored = await asyncio.to_thread(self._index.offsets)
        with self._lock:
            for partition, offset in stored.items():
                self._read[partition] = max(offset, self._read.get(partition, 0))

    def advanced(self, topic: str, partition: int, next_offset: int) -> None:
        """``UnitIndex.on_advanced``: called from the index's worker threads."""
        with self._lock:
            key = (topic, partition)
            self._read[key] = max(next_offset, self._read.get(key, 0))

    def _behind(self, ends: dict[tuple[str, int], int]) -> int:
        with self._lock:
            return sum(max(end - self._read.get(key, 0), 0) for key, end in ends.items())

    async def wait_until_current(self, timeout_s: float | None = None) -> bool:
        deadline = time.monotonic() + (self._timeout_s if timeout_s is None else timeout_s)
        ends: dict[tuple[str, int], int] | None = None
        while True:
            if ends is None:
                ends = await self._ends()
            if ends is not None and self._behind(ends) == 0:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(CUSTODY_CATCH_UP_POLL_INTERVAL_S)

    async def lag(self) -> list[PartitionLag] | None:
        """Per partition the index reads: end offset and the index's own offset."""
        ends = await self._ends()
        if ends is None:
            return None
        with self._lock:
            return [
                PartitionLag(topic, partition, end, self._read.get((topic, partition), 0))
                for (topic, partition), end in sorted(ends.items())
            ]
