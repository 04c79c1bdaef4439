"""The generic, protocol-agnostic Kafka edge of a registry node.

The protocol layer hands over serialised, signed envelopes (bytes) with a
topic and a key; this package gets them to Kafka and back with the
guarantees of PROTOCOL.md ("Local durability: outbox and inbox"):

- ``Outbox.add`` writes a message in the caller's database transaction;
- ``OutboxRelay`` publishes committed rows in id order, at least once;
- ``Inbox`` lets a handler drop a message it has already applied;
- ``SqlQuarantine`` keeps a record the node refused, so its partition moves on;
- ``build_node_broker`` / ``subscribe_records`` commit a consumer offset only
  after the handler (and so its transaction) returned;
- ``ensure_topics`` creates the inbox and the decision log at start;
- ``MessagingEdge`` starts and stops all of it in order.
"""

from .acls import (
    AclBinding,
    federation_acls,
    federation_topic_specs,
    party_principal,
    provision_federation,
)
from .broker import (
    BrokerSender,
    ProducerSender,
    RawKafkaRecord,
    RecordHandler,
    build_broker,
    build_node_broker,
    check_manual_commit,
    subscribe_records,
)
from .config import DECISION_TOPIC, MessagingConfig, inbox_topic, tls_from_settings
from .directory_topic import publish_directory
from .edge import MessagingEdge, PartitionLag, UnitIndexHandlers
from .errors import (
    BrokerUnavailableError,
    DuplicateMessageError,
    EdgeNotStartedError,
    InvalidOutboxMessageError,
    KafkaSecurityError,
    MessagingError,
    TopicSetupError,
)
from .inbox import Inbox
from .outbox import Outbox
from .quarantine import (
    QUARANTINE_TABLE,
    InMemoryQuarantine,
    QuarantinedRow,
    RefusedRecord,
    SqlQuarantine,
)
from .relay import (
    OutboxRelay,
    RebuildableSender,
    RecordSender,
    RelayPublishError,
    oldest_unsent_age_s,
)
from .security import KafkaTls
from .tables import (
    MESSAGING_TABLES,
    MessagingTables,
    define_messaging_tables,
)
from .topics import TopicSpec, ensure_topics, node_topic_specs, prepare_node_topics, verify_topics

__all__ = [
    "DECISION_TOPIC",
    "MESSAGING_TABLES",
    "QUARANTINE_TABLE",
    "AclBinding",
    "BrokerSender",
    "BrokerUnavailableError",
    "DuplicateMessageError",
    "EdgeNotStartedError",
    "InMemoryQuarantine",
    "Inbox",
    "InvalidOutboxMessageError",
    "KafkaSecurityError",
    "KafkaTls",
    "MessagingConfig",
    "MessagingEdge",
    "MessagingError",
    "MessagingTables",
    "Outbox",
    "OutboxRelay",
    "PartitionLag",
    "ProducerSender",
    "QuarantinedRow",
    "RawKafkaRecord",
    "RebuildableSender",
    "RecordHandler",
    "RecordSender",
    "RefusedRecord",
    "RelayPublishError",
    "SqlQuarantine",
    "TopicSetupError",
    "TopicSpec",
    "UnitIndexHandlers",
    "build_broker",
    "build_node_broker",
    "check_manual_commit",
    "define_messaging_tables",
    "ensure_topics",
    "federation_acls",
    "federation_topic_specs",
    "inbox_topic",
    "node_topic_specs",
    "oldest_unsent_age_s",
    "party_principal",
    "prepare_node_topics",
    "provision_federation",
    "publish_directory",
    "subscribe_records",
    "tls_from_settings",
    "verify_topics",
]
