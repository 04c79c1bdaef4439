"""Topic admin at node start: create the node's inbox and the decision log if missing.

Every node runs this at start, so two nodes starting together race to create
the shared decision topic; the loser's TOPIC_ALREADY_EXISTS is success. An
existing topic is then described, and a partition count other than the one
configured is logged loudly: the decision log's partitioning must be the same
for every node, and the first node to start fixed it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    KafkaError,
    LeaderNotAvailableError,
    TopicAlreadyExistsError,
    for_code,
)

from .config import (
    MIN_INSYNC_REPLICAS_PRODUCTION,
    REPLICATION_FACTOR_PRODUCTION,
    MessagingConfig,
)
from .errors import TopicSetupError
from .security import KafkaTls, client_security_options

_log = structlog.get_logger(__name__)

ADMIN_REQUEST_TIMEOUT_MS = 30_000
# How long the controller may take to create the topics before answering.
TOPIC_CREATE_TIMEOUT_MS = 30_000
# A topic just created (by us or by the node that won the race) may take a
# moment to appear in the metadata of the broker we ask.
DESCRIBE_ATTEMPTS_MAX = 100
DESCRIBE_RETRY_DELAY_S = 0.2
_NO_ERROR = 0
# A topic whose partition leaders are still being elected exists all the same.
_TOPIC_EXISTS_CODES = frozenset({_NO_ERROR, LeaderNotAvailableError.errno})
MIN_INSYNC_REPLICAS_CONFIG = "min.insync.replicas"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic as the federation needs it."""

    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str]


def node_topic_specs(config: MessagingConfig) -> list[TopicSpec]:
    """The node's inbox, the shared decision log, unit log and snapshot topic, with retention."""
    min_insync = str(config.min_insync_replicas)
    directory = [] if config.directory_topic is None else [directory_topic_spec(config)]
    return [
        *directory,
        TopicSpec(
            name=config.inbox_topic,
            partitions=config.inbox_topic_partitions,
            replication_factor=config.replication_factor,
            configs={
                "cleanup.policy": "delete",
                "retention.ms": str(config.inbox_retention_ms),
                "min.insync.replicas": min_insync,
                "unclean.leader.election.enable": "false",
            },
        ),
        TopicSpec(
            name=config.decision_topic,
            partitions=config.decision_topic_partitions,
            replication_factor=config.replication_factor,
            configs={
                # Never compacted, never expired: the log is the arbiter and
                # "first record wins" needs every record, forever.
                "cleanup.policy": "delete",
                "retention.ms": "-1",
                "retention.bytes": "-1",
                "min.insync.replicas": min_insync,
                # A replica that missed acknowledged decisions never becomes leader.
                "unclean.leader.election.enable": "false",
            },
        ),
        TopicSpec(
            name=config.unit_log_topic,
            partitions=config.unit_log_topic_partitions,
            replication_factor=config.replication_factor,
            configs={
                # Kept forever like the decision log: a Party joining late builds
                # its unit index from the first record.
                "cleanup.policy": "delete",
                "retention.ms": "-1",
                "retention.bytes": "-1",
                "min.insync.replicas": min_insync,
            },
        ),
        TopicSpec(
            name=config.snapshot_topic,
            partitions=config.snapshot_topic_partitions,
            replication_factor=config.replication_factor,
            configs={
                # Keyed by Party: compaction keeps each Party's latest snapshot,
                # which is all reconciliation compares.
                "cleanup.policy": "compact",
                "min.insync.replicas": min_insync,
            },
        ),
    ]


def directory_topic_spec(config: MessagingConfig) -> TopicSpec:
    """The directory topic: one partition (the versions' order), compacted (the newest stays)."""
    if config.directory_topic is None:
        raise ValueError("this node follows no directory topic")
    return directory_topic_spec_named(
        config.directory_topic, config.replication_factor, config.min_insync_replicas
    )


def directory_topic_spec_named(
    name: str, replication_factor: int, min_insync_replicas: int
) -> TopicSpec:
    return TopicSpec(
        name=name,
        partitions=1,
        replication_factor=replication_factor,
        configs={
            "cleanup.policy": "compact",
            "min.insync.replicas": str(min_insync_replicas),
            "unclean.leader.election.enable": "false",
        },
    )


async def prepare_node_topics(config: MessagingConfig, *, client_id: str) -> None:
    """Create the node's topics, or on an ACL'd cluster check that the admin created them."""
    specs = node_topic_specs(config)
    if config.create_topics:
        await ensure_topics(
            config.bootstrap_servers,
            specs,
            client_id=client_id,
            tls=config.tls,
            replicate_on_cluster=True,
        )
    else:
        await verify_topics(config.bootstrap_servers, specs, client_id=client_id, tls=config.tls)


def _admin_client(
    bootstrap_servers: str, client_id: str, tls: KafkaTls | None
) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        request_timeout_ms=ADMIN_REQUEST_TIMEOUT_MS,
        **client_security_options(tls),
    )


async def verify_topics(
    bootstrap_servers: str,
    specs: Sequence[TopicSpec],
    *,
    client_id: str,
    tls: KafkaTls | None = None,
) -> None:
    """Check that ``specs`` exist, without the right to create them (``TopicSetupError`` if not)."""
    admin = _admin_client(bootstrap_servers, client_id, tls)
    try:
        await admin.start()
        described = await admin.describe_topics([spec.name for spec in specs])
        missing = {
            topic["topic"]: for_code(topic["error_code"]).__name__
            for topic in described
            if topic["error_code"] not in _TOPIC_EXISTS_CODES
        }
        if missing:
            raise TopicSetupError(
                f"topics this node needs are missing or not visible to it: {missing}; "
                "on a secured federation the federation admin creates them (deploy/kafka/acls.py)"
            )
        _warn_on_partition_mismatch(specs, await _partition_counts(admin, specs))
    except KafkaError as error:
        raise TopicSetupError(f"topic check failed: {error!r}") from error
    finally:
        await admin.close()


async def ensure_topics(
    bootstrap_servers: str,
    specs: Sequence[TopicSpec],
    *,
    client_id: str,
    tls: KafkaTls | None = None,
    replicate_on_cluster: bool = False,
) -> None:
    """Create the topics that are missing; an existing topic (or a lost race) is fine.

    With ``replicate_on_cluster``, topics specified with fewer replicas than a
    production cluster keeps (a local node's) get three replicas and two in sync
    when the cluster has at least three brokers: a developer's three-broker cluster
    then survives a broker failure like a production one.
    """
    admin = _admin_client(bootstrap_servers, client_id, tls)
    try:
        await admin.start()
        if replicate_on_cluster:
            cluster = await admin.describe_cluster()
            specs = [_replicated(spec, len(cluster["brokers"])) for spec in specs]
        response = await admin.create_topics(
            [
                NewTopic(
                    name=spec.name,
                    num_partitions=spec.partitions,
                    replication_factor=spec.replication_factor,
                    topic_configs=dict(spec.configs),
                )
                for spec in specs
            ],
            timeout_ms=TOPIC_CREATE_TIMEOUT_MS,
            validate_only=False,
        )
        _raise_for_errors(response.topic_errors)
        _warn_on_partition_mismatch(specs, await _partition_counts(admin, specs))
    except KafkaError as error:
        raise TopicSetupError(f"topic setup failed: {error!r}") from error
    finally:
        await admin.close()


def _replicated(spec: TopicSpec, brokers: int) -> TopicSpec:
    if brokers < REPLICATION_FACTOR_PRODUCTION or (
        spec.replication_factor >= REPLICATION_FACTOR_PRODUCTION
    ):
        return spec
    configs = dict(spec.configs)
    configs[MIN_INSYNC_REPLICAS_CONFIG] = str(MIN_INSYNC_REPLICAS_PRODUCTION)
    return TopicSpec(spec.name, spec.partitions, REPLICATION_FACTOR_PRODUCTION, configs)


def _raise_for_errors(topic_errors: Sequence[Any]) -> None:
    problems: list[str] = []
    for topic_error in topic_errors:
        # CreateTopicsResponse v0 has (topic, code); v1+ adds the message.
        name, code = topic_error[0], topic_error[1]
        message = topic_error[2] if len(topic_error) > 2 else None
        if code in (_NO_ERROR, TopicAlreadyExistsError.errno):
            continue
        problems.append(f"{name}: {for_code(code).__name__} {message or ''}".strip())
    if problems:
        raise TopicSetupError("broker refused to create topics: " + "; ".join(problems))


async def _partition_counts(
    admin: AIOKafkaAdminClient, specs: Sequence[TopicSpec]
) -> dict[str, int]:
    names = [spec.name for spec in specs]
    counts: dict[str, int] = {}
    error_codes: dict[str, int] = {}
    for _ in range(DESCRIBE_ATTEMPTS_MAX):
        described = await admin.describe_topics(names)
        error_codes = {topic["topic"]: topic["error_code"] for topic in described}
        counts = {
            topic["topic"]: len(topic["partitions"])
            for topic in described
            if topic["error_code"] in _TOPIC_EXISTS_CODES and topic["partitions"]
        }
        if all(name in counts for name in names):
            return counts
        await asyncio.sleep(DESCRIBE_RETRY_DELAY_S)
    missing = {name: error_codes.get(name) for name in names if name not in counts}
    raise TopicSetupError(f"topics not visible after creation (name: Kafka error code): {missing}")


def _warn_on_partition_mismatch(specs: Sequence[TopicSpec], counts: dict[str, int]) -> None:
    for spec in specs:
        found = counts[spec.name]
        if found != spec.partitions:
            _log.warning(
                "topic exists with another partition count than configured",
                topic=spec.name,
                partitions_found=found,
                partitions_configured=spec.partitions,
            )
