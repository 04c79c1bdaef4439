"""When a node asks the broker whether directory versions wait unread (LiveDirectory.is_behind)."""

from __future__ import annotations

from datetime import datetime, timedelta

from a6wire.directory import DirectoryAuthority, amend, sign_directory
from a6wire.keys import public_key_base64
from registry.application.federation import LiveDirectory
from tests.sim import factories

AUTHORITY_KEY = factories.party_key("SECRETARIAT")
GENESIS = factories.directory_for(["CHE", "GHA"])


class Clock:
    def __init__(self) -> None:
        self.at = factories.at(10 * 60 * 60 * 1000)

    def now(self) -> datetime:
        return self.at


def _live(clock: Clock, ends: list[int]) -> tuple[LiveDirectory, list[int]]:
    authority = DirectoryAuthority(public_keys=frozenset({public_key_base64(AUTHORITY_KEY)}))
    live = LiveDirectory(GENESIS, authority, now=clock.now)
    lookups: list[int] = []

    def refresh_end() -> None:
        lookups.append(1)
        live.note_end_offset(ends[0])

    live.refresh_end = refresh_end
    return live, lookups


def test_behind_until_every_version_up_to_the_end_is_read() -> None:
    clock = Clock()
    live, lookups = _live(clock, [1])
    assert live.is_behind(None)
    version = sign_directory(amend(GENESIS, issued_at=clock.at, suspend=("GHA",)), AUTHORITY_KEY)
    live.offer(version.to_json(), offset=0)
    assert not live.is_behind(None)
    assert len(lookups) == 2


def test_a_record_sent_well_before_the_last_lookup_needs_no_new_one() -> None:
    clock = Clock()
    live, lookups = _live(clock, [0])
    assert not live.is_behind(None)
    old_record = clock.at - timedelta(hours=1)
    for _ in range(5):
        assert not live.is_behind(old_record)
    assert len(lookups) == 1
    # A record sent now may be signed under a version published after the lookup.
    assert not live.is_behind(clock.at)
    assert len(lookups) == 2


def test_a_node_without_authority_is_never_behind() -> None:
    live = LiveDirectory(GENESIS, None)
    assert not live.is_behind(None)
