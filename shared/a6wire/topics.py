"""Kafka topic names of the federation.

Each node owns one inbox topic that any member may write to and only the owner
reads; every decision record lands on one shared decision topic, keyed by
transfer id, so that all records about one transfer share one partition and
every node reads them in the same order (the order is the arbiter). The
federation unit log carries each registry's announcements of issuances,
cancellations and uses, keyed by originating registry, so that one registry's
announcements about its own serial numbers keep their order; like the decision
topic it is kept forever, since a node joining late builds its index from it.
The snapshot topic carries each registry's periodic signed holdings snapshot,
keyed by Party and compacted: only the latest one of each Party matters.
The directory topic carries the federation directory's signed versions
(a6wire.directory): only the federation's authority writes it, every member
reads it from its start; it is compacted under one key, so it keeps at least
the newest version for a member that joins late.
"""

from __future__ import annotations

from a6wire.identifiers import IdentifierError, is_party_code

INBOX_TOPIC_PREFIX = "a6.node."
INBOX_TOPIC_SUFFIX = ".inbox"
DECISION_TOPIC = "a6.decisions"
UNIT_LOG_TOPIC = "a6.units"
# Each registry's latest holdings snapshot (reconciliation): compacted, keyed by
# Party, so the topic keeps one current snapshot per Party and a node joining
# late reads only those, not every snapshot ever published.
SNAPSHOT_TOPIC = "a6.snapshots"
DIRECTORY_TOPIC = "a6.directory"
# Every version under one key: compaction keeps the newest, and one partition
# keeps the versions in the order the authority published them.
DIRECTORY_RECORD_KEY = b"federation-directory"


def inbox_topic(party: str) -> str:
    """The inbox topic of one Party's registry node, e.g. ``a6.node.CHE.inbox``."""
    if not is_party_code(party):
        raise IdentifierError(f"{party!r} is not a Party code")
    return f"{INBOX_TOPIC_PREFIX}{party}{INBOX_TOPIC_SUFFIX}"


def decision_key(transfer_id: str) -> bytes:
    """The Kafka record key on the decision topic: the transfer id, so one partition
    holds every record about one transfer."""
    return transfer_id.encode("ascii")


def unit_log_key(originating_registry_id: str) -> bytes:
    """The Kafka record key on the unit log: the originating registry."""
    return originating_registry_id.encode("ascii")


def snapshot_key(party: str) -> bytes:
    """The Kafka record key on the snapshot topic: the Party (compaction keeps its latest)."""
    if not is_party_code(party):
        raise IdentifierError(f"{party!r} is not a Party code")
    return party.encode("ascii")
