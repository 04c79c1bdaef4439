"""The authority's side of the directory topic: publish one signed directory version.

Run by the federation's authority (on a secured cluster as the admin principal,
the only one allowed to write the topic). The topic is created on first use:
one partition and compacted (``topics.directory_topic_spec_named``).
"""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from a6wire.topics import DIRECTORY_RECORD_KEY, DIRECTORY_TOPIC

from .broker import PRODUCER_ACKS, PRODUCER_REQUEST_TIMEOUT_MS
from .config import MIN_INSYNC_REPLICAS_LOCAL, REPLICATION_FACTOR_LOCAL
from .errors import BrokerUnavailableError
from .security import KafkaTls, client_security_options
from .topics import directory_topic_spec_named, ensure_topics

AUTHORITY_CLIENT_ID = "a6-federation-authority"


async def publish_directory(
    bootstrap_servers: str,
    data: bytes,
    *,
    topic: str = DIRECTORY_TOPIC,
    tls: KafkaTls | None = None,
    replication_factor: int = REPLICATION_FACTOR_LOCAL,
    min_insync_replicas: int = MIN_INSYNC_REPLICAS_LOCAL,
) -> int:
    """Append ``data`` (a signed version's JSON) to the directory topic; its offset."""
    await ensure_topics(
        bootstrap_servers,
        [directory_topic_spec_named(topic, replication_factor, min_insync_replicas)],
        client_id=AUTHORITY_CLIENT_ID,
        tls=tls,
        replicate_on_cluster=True,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=AUTHORITY_CLIENT_ID,
        acks=PRODUCER_ACKS,
        enable_idempotence=True,
        request_timeout_ms=PRODUCER_REQUEST_TIMEOUT_MS,
        **client_security_options(tls),
    )
    try:
        await producer.start()
        metadata = await producer.send_and_wait(topic, data, key=DIRECTORY_RECORD_KEY)
    except KafkaError as error:
        raise BrokerUnavailableError(
            f"the directory version could not be published to {topic} at "
            f"{bootstrap_servers}: {error!r}"
        ) from error
    finally:
        await producer.stop()
    return int(metadata.offset)
