"""The subscriber's redelivery backoff: doubling from the first pause, capped."""

from __future__ import annotations

import pytest

from registry.adapters.messaging.broker import (
    CONSUMER_MAX_POLL_INTERVAL_MS,
    REDELIVERY_BACKOFF_FIRST_S,
    REDELIVERY_BACKOFF_MAX_S,
    redelivery_backoff_s,
)


def test_the_pause_doubles_with_each_consecutive_failure_up_to_the_cap() -> None:
    pauses = [redelivery_backoff_s(failures) for failures in range(1, 12)]
    assert pauses[0] == REDELIVERY_BACKOFF_FIRST_S
    assert pauses[1] == 2 * REDELIVERY_BACKOFF_FIRST_S
    assert pauses == sorted(pauses)
    assert pauses[-1] == REDELIVERY_BACKOFF_MAX_S
    assert redelivery_backoff_s(10**9) == REDELIVERY_BACKOFF_MAX_S


def test_the_longest_pause_leaves_the_consumer_in_its_group() -> None:
    # The pause holds the poll loop; past max.poll.interval the member is evicted.
    assert REDELIVERY_BACKOFF_MAX_S * 1000 < CONSUMER_MAX_POLL_INTERVAL_MS / 2


def test_there_is_no_pause_before_a_failure() -> None:
    with pytest.raises(ValueError, match="at least one failure"):
        redelivery_backoff_s(0)
