"""Every limit of the transfer protocol, named, with its unit."""

from __future__ import annotations

from datetime import timedelta

# A participant that voted YES waits this long past the transfer's deadline before
# it appends ABORT itself: clocks skew between Parties, and the coordinator's
# COMMIT, appended before the deadline by the coordinator's clock, should get
# the chance to land first.
DECISION_GRACE_MS = 30_000

# The coordinator re-sends its PREPARE to participants that have not answered
# (inbox messages can be lost between publish and consume), and after the
# decision to participants that have not said DONE. Bounded so a dead peer
# costs a fixed number of messages.
PREPARE_RESEND_INTERVAL_MS = 5_000
PREPARE_RESEND_COUNT_MAX = 60

# The deadline a transferring node offers by default, and the furthest deadline a
# participant accepts: a participant holds a pending credit until the decision,
# so a peer must not be able to make it hold one indefinitely.
TRANSFER_DEADLINE_DEFAULT_MS = 120_000
TRANSFER_DEADLINE_MAX_MS = 24 * 60 * 60 * 1_000


def milliseconds(value_ms: int) -> timedelta:
    return timedelta(milliseconds=value_ms)


DECISION_GRACE = milliseconds(DECISION_GRACE_MS)
PREPARE_RESEND_INTERVAL = milliseconds(PREPARE_RESEND_INTERVAL_MS)
TRANSFER_DEADLINE_MAX = milliseconds(TRANSFER_DEADLINE_MAX_MS)
