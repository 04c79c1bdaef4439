"""The Kafka settings of one node's messaging edge, every limit named with its unit.

A node's edge needs more Kafka knobs than the node's settings carry today
(replication, partitions, retention). They live here as one frozen value so
that the composition root can build it once from the settings and pass it
down, and so that tests can build one with unique topic and group names.
"""

from __future__ import annotations

from dataclasses import dataclass

from registry.settings import Settings

from .security import KafkaTls

# Topic names of the federation (PROTOCOL.md, "Roles and topics"). They belong
# to the wire contract; when a6wire grows a topics module these should come
# from there instead.
DECISION_TOPIC = "a6.decisions"
INBOX_TOPIC_TEMPLATE = "a6.node.{party}.inbox"
INBOX_GROUP_ID_TEMPLATE = "a6-node-{party}"
DECISION_GROUP_ID_TEMPLATE = "a6-node-{party}-decisions"
# The federation unit log (a6wire.topics.UNIT_LOG_TOPIC) and the two groups of the
# node's unit index: one reads the unit log, one the decision topic again (the
# transfer protocol's decision group commits its own offsets, at its own pace).
UNIT_LOG_TOPIC = "a6.units"
# Derived from the node's own groups, so whatever makes those unique (a test's
# names) makes these unique too: a6-node-<PARTY>-unit-index, and
# a6-node-<PARTY>-decisions-unit-index.
UNIT_INDEX_GROUP_SUFFIX = "-unit-index"
UNIT_LOG_TOPIC_PARTITIONS_DEFAULT = 3
# The holdings snapshots (a6wire.topics.SNAPSHOT_TOPIC) and the group that reads
# them for reconciliation: a6-node-<PARTY>-snapshots.
SNAPSHOT_TOPIC = "a6.snapshots"
SNAPSHOT_GROUP_SUFFIX = "-snapshots"
SNAPSHOT_TOPIC_PARTITIONS_DEFAULT = 3
# The directory topic (a6wire.topics.DIRECTORY_TOPIC), read by a group of its own
# from the start at every start: a6-node-<PARTY>-directory.
DIRECTORY_TOPIC = "a6.directory"
DIRECTORY_GROUP_SUFFIX = "-directory"

# A developer's single local broker cannot hold more than one replica; a
# production cluster keeps three and refuses writes with fewer than two in
# sync, so the decision log (the arbiter of every transfer) survives the loss
# of one broker without ever acknowledging a write only one broker holds.
REPLICATION_FACTOR_LOCAL = 1
MIN_INSYNC_REPLICAS_LOCAL = 1
REPLICATION_FACTOR_PRODUCTION = 3
MIN_INSYNC_REPLICAS_PRODUCTION = 2

# Several partitions let the decision log spread over brokers; every record of
# one transfer still lands in one partition because it is keyed by transfer id.
# The count must be the same for every node, so the first node to start fixes it.
DECISION_TOPIC_PARTITIONS_DEFAULT = 3
INBOX_TOPIC_PARTITIONS_DEFAULT = 3

# The decision log is the arbiter and is kept forever (-1 is Kafka's "never").
DECISION_RETENTION_MS = -1
# An inbox only carries requests in flight; transfers have deadlines of hours,
# so a month covers any outage a node can survive with its transfers intact.
INBOX_RETENTION_MS = 30 * 24 * 60 * 60 * 1000


@dataclass(frozen=True, kw_only=True)
class MessagingConfig:
    """What one node's messaging edge needs to know; see the module docstring."""

    party: str
    bootstrap_servers: str
    inbox_topic: str
    inbox_group_id: str
    decision_topic: str = DECISION_TOPIC
    decision_group_id: str
    decision_topic_partitions: int = DECISION_TOPIC_PARTITIONS_DEFAULT
    inbox_topic_partitions: int = INBOX_TOPIC_PARTITIONS_DEFAULT
    replication_factor: int = REPLICATION_FACTOR_LOCAL
    min_insync_replicas: int = MIN_INSYNC_REPLICAS_LOCAL
    inbox_retention_ms: int = INBOX_RETENTION_MS
    # None: PLAINTEXT. Otherwise every client of the node uses mutual TLS.
    tls: KafkaTls | None = None
    # False on an ACL'd federation cluster, where only the federation admin creates
    # topics (deploy/kafka/acls.py): the node then checks that its topics exist.
    create_topics: bool = True
    unit_log_topic: str = UNIT_LOG_TOPIC
    unit_log_topic_partitions: int = UNIT_LOG_TOPIC_PARTITIONS_DEFAULT
    snapshot_topic: str = SNAPSHOT_TOPIC
    snapshot_topic_partitions: int = SNAPSHOT_TOPIC_PARTITIONS_DEFAULT
    # None: the node follows no published directory versions (no authority configured).
    directory_topic: str | None = None

    @property
    def snapshot_group_id(self) -> str:
        """The reconciliation's consumer group on the snapshot topic."""
        return self.inbox_group_id + SNAPSHOT_GROUP_SUFFIX

    @property
    def directory_group_id(self) -> str:
        return self.inbox_group_id + DIRECTORY_GROUP_SUFFIX

    @property
    def unit_index_groups(self) -> tuple[str, str]:
        """The unit index's consumer groups: (unit log, decision topic)."""
        return (
            self.inbox_group_id + UNIT_INDEX_GROUP_SUFFIX,
            self.decision_group_id + UNIT_INDEX_GROUP_SUFFIX,
        )

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.replication_factor < 1:
            problems.append(f"replication_factor {self.replication_factor} is below 1")
        if not 1 <= self.min_insync_replicas <= self.replication_factor:
            problems.append(
                f"min_insync_replicas {self.min_insync_replicas} must be between 1 and "
                f"the replication factor {self.replication_factor}"
            )
        if (
            self.decision_topic_partitions < 1
            or self.inbox_topic_partitions < 1
            or self.unit_log_topic_partitions < 1
            or self.snapshot_topic_partitions < 1
        ):
            problems.append("topic partition counts must be at least 1")
        if problems:
            raise ValueError("invalid messaging config: " + "; ".join(problems))

    @classmethod
    def for_party(
        cls,
        party: str,
        bootstrap_servers: str,
        *,
        production: bool,
        decision_topic: str = DECISION_TOPIC,
        decision_topic_partitions: int = DECISION_TOPIC_PARTITIONS_DEFAULT,
        tls: KafkaTls | None = None,
        directory_topic: str | None = None,
    ) -> MessagingConfig:
        """The federation's standard names for ``party``, and replication for the environment."""
        return cls(
            party=party,
            bootstrap_servers=bootstrap_servers,
            inbox_topic=inbox_topic(party),
            inbox_group_id=INBOX_GROUP_ID_TEMPLATE.format(party=party),
            decision_topic=decision_topic,
            decision_group_id=DECISION_GROUP_ID_TEMPLATE.format(party=party),
            decision_topic_partitions=decision_topic_partitions,
            replication_factor=(
                REPLICATION_FACTOR_PRODUCTION if production else REPLICATION_FACTOR_LOCAL
            ),
            min_insync_replicas=(
                MIN_INSYNC_REPLICAS_PRODUCTION if production else MIN_INSYNC_REPLICAS_LOCAL
            ),
            tls=tls,
            create_topics=tls is None,
            directory_topic=directory_topic,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> MessagingConfig:
        """Local mode means one local broker; anything else is a replicated cluster."""
        return cls.for_party(
            settings.party,
            settings.kafka_bootstrap_servers,
            production=not settings.local_mode,
            tls=tls_from_settings(settings),
            directory_topic=DIRECTORY_TOPIC if settings.federation_authority_keys else None,
        )


def tls_from_settings(settings: Settings) -> KafkaTls | None:
    """The node's mTLS files when ``REGISTRY_KAFKA_SECURITY_PROTOCOL`` is SSL."""
    if settings.kafka_security_protocol != "SSL":
        return None
    # Settings validation has refused SSL without all three files.
    assert settings.kafka_ssl_ca_path is not None
    assert settings.kafka_ssl_cert_path is not None
    assert settings.kafka_ssl_key_path is not None
    return KafkaTls(
        ca_path=settings.kafka_ssl_ca_path,
        cert_path=settings.kafka_ssl_cert_path,
        key_path=settings.kafka_ssl_key_path,
    )


def inbox_topic(party: str) -> str:
    """The inbox topic of ``party``: any member writes to it, only that Party reads it."""
    return INBOX_TOPIC_TEMPLATE.format(party=party)
