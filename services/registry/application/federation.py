"""The federation directory a node holds now, and how a published version replaces it.

The node starts from the newest of its directory file (the genesis, or a signed
version the authority handed it) and the last version it adopted (kept by a
``DirectoryStore``), then reads every version published on the directory topic
and offers it here. ``LiveDirectory.offer`` adopts a version only by the rules of
``a6wire.directory.accept_directory`` (strictly newer, signed by enough authority
keys); anything else leaves the held version as it is and logs one line with its
reason code. An adopted version is stored before it is used, so a restart starts
from it; then every listener is told (the node's signer switches keys there).

A record that fails verification for want of a member or a key (UNKNOWN_SENDER,
BAD_SIGNATURE) may come from a member that joined, or rotated its key, in a version
this node has not read yet: while the node has not read the directory topic to its
end (``is_behind``), such a record is not refused but read again later
(``DirectoryBehindError``), so a transfer with a new member, or a decision signed
with a new key, is never quarantined for a race between two topics.

Everything that asks "who is a member, with which key, at which inbox, is it
suspended?" asks ``current()`` at that moment: the verifier of every inbound
record, the routing of every outbound one, and the membership checks of a
transfer's start and of a PREPARE's vote.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

import structlog

from a6wire.directory import (
    DirectoryAuthority,
    DirectoryRefusedError,
    FederationDirectory,
    SignedDirectory,
    accept_directory,
)
from a6wire.reasons import ReasonCode

_log = structlog.get_logger(__name__)

DirectoryListener = Callable[[FederationDirectory], None]
# How far a sender's clock may run ahead of this node's: an end offset looked up
# less than this after a record's sent_at may predate the version it was signed
# under, so it is looked up again.
DIRECTORY_END_CLOCK_SKEW_S = 60.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DirectoryBehindError(Exception):
    """A record fails verification while this node has directory versions still to read.

    Transient: the record is redelivered (after a backoff) until the node has read
    the directory topic to its end; then it verifies, or is refused for good.
    """


class DirectoryStore(Protocol):
    """Where a node keeps the last version it adopted (``registry.adapters.directory_store``)."""

    def load(self) -> SignedDirectory | None:
        """The version stored, None if none (or none readable: the topic has it again)."""
        ...

    def save(self, signed: SignedDirectory) -> None:
        """Store ``signed``, replacing what was stored; ``StorageUnavailableError`` if not."""
        ...


class LiveDirectory:
    """The directory version this node holds; see the module docstring."""

    def __init__(
        self,
        current: FederationDirectory,
        authority: DirectoryAuthority | None,
        store: DirectoryStore | None = None,
        *,
        party: str = "",
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._current = current
        self._authority = authority
        self._store = store
        self._party = party
        self._lock = threading.Lock()
        self._listeners: list[DirectoryListener] = []
        # The next offset of the directory topic to read, and its end as last seen.
        self._read_offset = 0
        self._end_offset: int | None = None
        # Set by the edge: look the end offset up now (blocking, bounded; called from
        # a handler's worker thread, never from the event loop).
        self.refresh_end: Callable[[], None] | None = None
        self._now = now
        self._end_seen_at: datetime | None = None

    def current(self) -> FederationDirectory:
        return self._current

    @property
    def version(self) -> int:
        return self._current.version

    @property
    def follows_published_versions(self) -> bool:
        """Whether an authority is configured (otherwise the file is all there is)."""
        return self._authority is not None

    def subscribe(self, listener: DirectoryListener) -> None:
        self._listeners.append(listener)

    def note_end_offset(self, end_offset: int) -> None:
        """The directory topic's end offset, as the edge last saw it."""
        self._end_offset = end_offset
        self._end_seen_at = self._now()

    def is_behind(self, sent_at: datetime | None = None) -> bool:
        """Whether versions may wait unread on the directory topic (see the module docstring).

        ``sent_at`` is when the record that failed was sent: a version it was signed
        under was published before it, so an end offset seen well after ``sent_at``
        covers that version and need not be looked up again (a backlog of records
        nobody can verify costs one lookup, not one each).
        """
        if self._authority is None:
            return False
        seen_at = self._end_seen_at
        stale = (
            sent_at is None
            or seen_at is None
            or seen_at < sent_at + timedelta(seconds=DIRECTORY_END_CLOCK_SKEW_S)
        )
        if stale and self.refresh_end is not None:
            try:
                self.refresh_end()
            except Exception:
                # Judged against the end last seen; the edge logged why it is unknown.
                _log.warning("directory topic end not refreshed", party=self._party)
        return self._end_offset is None or self._read_offset < self._end_offset

    def offer(self, data: bytes, offset: int | None = None) -> FederationDirectory | None:
        """Adopt the version in ``data`` (read at ``offset``) if the rules allow it;
        the adopted version, or None."""
        adopted = self._offer(data)
        if offset is not None:
            self._read_offset = max(self._read_offset, offset + 1)
        return adopted

    def _offer(self, data: bytes) -> FederationDirectory | None:
        if self._authority is None:
            self._refused(ReasonCode.DIRECTORY_NOT_AUTHORISED, "no authority keys are configured")
            return None
        with self._lock:
            try:
                signed = SignedDirectory.from_json(data)
                adopted = accept_directory(self._current, signed, self._authority)
            except DirectoryRefusedError as refused:
                self._refused(refused.reason, refused.detail)
                return None
            if self._store is not None:
                # Raises StorageUnavailableError: the record is read again, never half-adopted.
                self._store.save(signed)
            self._current = adopted
        _log.info(
            "federation directory version adopted",
            party=self._party,
            version=adopted.version,
            members=[member.party for member in adopted.members],
            suspended=[member.party for member in adopted.members if not member.active],
        )
        for listener in self._listeners:
            listener(adopted)
        return adopted

    def member_refusals(self, party: str) -> tuple[str, ...]:
        """Why no new transfer may involve ``party`` now: a suspended member."""
        if self._current.is_suspended(party):
            return (ReasonCode.MEMBER_SUSPENDED.value,)
        return ()

    def _refused(self, reason: ReasonCode, detail: str) -> None:
        # Reading the topic again after a restart replays the version held: no news.
        log_line = _log.info if reason is ReasonCode.DIRECTORY_NOT_NEWER else _log.warning
        log_line(
            "federation directory version refused; keeping the version held",
            party=self._party,
            reason_code=reason.value,
            detail=detail,
            version_held=self._current.version,
        )
