"""Reconciliation's two loops at the edge: publish our snapshot, compare everyone's.

Every ``REGISTRY_RECONCILIATION_PERIOD_S`` the node queues its holdings snapshot
(``Reconciliation.publish_snapshot``). Whenever a newer snapshot of some Party is
kept, and at least once per period, it waits (at most
``RECONCILIATION_CATCH_UP_TIMEOUT_S``) for its unit index to read the unit log and
the decision topic to their current end, then compares (``Reconciliation.compare``):
a snapshot reflects records its Party wrote before taking it, so an index that
has not read them would report differences that are only its own lag. The end
offsets are taken when the wait starts, so only the snapshots kept before it are
compared in that round (one kept during a long wait may reflect later records).
An index that cannot catch up in time skips the round, with one log line.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from registry.application.reconciliation import Reconciliation
from registry.entrypoints.custody import IndexCatchUp

_log = structlog.get_logger(__name__)

# The wait for the unit index before a comparison; a round that runs out is skipped.
RECONCILIATION_CATCH_UP_TIMEOUT_S = 30.0


class ReconciliationLoops:
    """See the module docstring."""

    def __init__(
        self, reconciliation: Reconciliation, catch_up: IndexCatchUp, *, period_s: float
    ) -> None:
        self._reconciliation = reconciliation
        self._catch_up = catch_up
        self._period_s = period_s
        self._kept = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    def snapshot_kept(self) -> None:
        """``SnapshotBus.on_kept``: called from a worker thread."""
        self._loop.call_soon_threadsafe(self._kept.set)

    async def publish_forever(self) -> None:
        while True:
            # One period after start first: a node that restarts often (tests, a
            # crash loop) does not flood the topic, and its relay is connected by then.
            await asyncio.sleep(self._period_s)
            try:
                await asyncio.to_thread(self._reconciliation.publish_snapshot)
            except Exception:
                # The database blinked: the next period publishes again.
                _log.exception("holdings snapshot not published", party=self._reconciliation.party)

    async def compare_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kept.wait(), self._period_s)
            self._kept.clear()
            await self.compare_once()

    async def compare_once(self) -> None:
        # Before the wait takes the logs' end offsets: only snapshots kept by now are
        # compared, whose records are all within those offsets.
        started = self._reconciliation.now()
        current = await self._catch_up.wait_until_current(RECONCILIATION_CATCH_UP_TIMEOUT_S)
        if not current:
            _log.warning(
                "reconciliation skipped: the unit index has not read the logs to their end",
                party=self._reconciliation.party,
            )
            return
        try:
            await asyncio.to_thread(self._reconciliation.compare, started)
        except Exception:
            _log.exception("reconciliation failed", party=self._reconciliation.party)
