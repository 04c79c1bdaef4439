"""The federation's Kafka ACLs and topics, written by the federation admin.

On a secured cluster (mTLS, ``StandardAuthorizer``, ``allow.everyone.if.no.acl.found=
false``) nothing is allowed that an ACL does not allow. ``federation_acls`` derives
every ACL from the members' messaging configs (so from the federation directory):
Party P, as principal ``User:party.P``, may

- read its own inbox topic, with its own consumer groups (inbox, decisions, the
  unit index's two, and reconciliation's on the snapshot topic);
- write to every other member's inbox topic;
- read and write the decision topic, the unit log and the snapshot topic (and any
  other topic every member shares);
- read the directory topic, with its own consumer group, and never write it: only
  the federation admin (the authority's publisher) does.

No member may create, alter or delete a topic: ``provision_federation`` creates them
all as the admin principal (a super user on the brokers), and nodes only check that
their topics exist (``MessagingConfig.create_topics`` is False).

aiokafka's admin client has no ACL call, so CreateAcls requests (api key 30, which
aiokafka's protocol module defines) go through its request sender.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError, for_code
from aiokafka.protocol.admin import CreateAclsRequest

from .config import MessagingConfig
from .errors import TopicSetupError
from .security import KafkaTls, client_security_options
from .topics import ADMIN_REQUEST_TIMEOUT_MS, TopicSpec, ensure_topics, node_topic_specs

PARTY_PRINCIPAL_TEMPLATE = "User:party.{party}"
ADMIN_PRINCIPAL = "User:federation-admin"
ANY_HOST = "*"
_NO_ERROR = 0


class ResourceType(enum.IntEnum):
    """Kafka's AclResourceType codes."""

    TOPIC = 2
    GROUP = 3
    CLUSTER = 4


class Operation(enum.IntEnum):
    """Kafka's AclOperation codes (READ and WRITE imply DESCRIBE)."""

    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8


class PatternType(enum.IntEnum):
    LITERAL = 3


class Permission(enum.IntEnum):
    ALLOW = 3


@dataclass(frozen=True, order=True, slots=True)
class AclBinding:
    """One ALLOW rule: ``principal`` may ``operation`` on the named resource."""

    resource_type: ResourceType
    resource_name: str
    principal: str
    operation: Operation


def party_principal(party: str) -> str:
    """The Kafka principal of ``party``'s node (the CN of its certificate, deploy/kafka/pki.py)."""
    return PARTY_PRINCIPAL_TEMPLATE.format(party=party)


def federation_acls(
    members: Mapping[str, MessagingConfig], *, shared_topics: Iterable[str] = ()
) -> list[AclBinding]:
    """Every ACL of the federation whose members have these messaging configs; see above."""
    bindings: set[AclBinding] = set()
    for party, config in members.items():
        principal = party_principal(party)
        bindings.add(AclBinding(ResourceType.TOPIC, config.inbox_topic, principal, Operation.READ))
        for group in (
            config.inbox_group_id,
            config.decision_group_id,
            *config.unit_index_groups,
            config.snapshot_group_id,
        ):
            bindings.add(AclBinding(ResourceType.GROUP, group, principal, Operation.READ))
        if config.directory_topic is not None:
            bindings.add(
                AclBinding(ResourceType.TOPIC, config.directory_topic, principal, Operation.READ)
            )
            bindings.add(
                AclBinding(ResourceType.GROUP, config.directory_group_id, principal, Operation.READ)
            )
        for topic in (
            config.decision_topic,
            config.unit_log_topic,
            config.snapshot_topic,
            *shared_topics,
        ):
            for operation in (Operation.READ, Operation.WRITE):
                bindings.add(AclBinding(ResourceType.TOPIC, topic, principal, operation))
        for other, other_config in members.items():
            if other != party:
                bindings.add(
                    AclBinding(
                        ResourceType.TOPIC, other_config.inbox_topic, principal, Operation.WRITE
                    )
                )
    return sorted(bindings)


def federation_topic_specs(members: Mapping[str, MessagingConfig]) -> list[TopicSpec]:
    """Every member's inbox and the shared decision log, each once."""
    specs: dict[str, TopicSpec] = {}
    for config in members.values():
        for spec in node_topic_specs(config):
            specs.setdefault(spec.name, spec)
    return list(specs.values())


async def create_acls(
    bootstrap_servers: str,
    bindings: Sequence[AclBinding],
    *,
    tls: KafkaTls | None,
    client_id: str = "a6-federation-admin",
) -> None:
    """Write ``bindings`` (an existing identical ACL is no error); TopicSetupError if refused."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        request_timeout_ms=ADMIN_REQUEST_TIMEOUT_MS,
        **client_security_options(tls),
    )
    problems: list[str] = []
    try:
        await admin.start()
        for binding in bindings:
            request = CreateAclsRequest(
                resource_type=binding.resource_type,
                resource_name=binding.resource_name,
                resource_pattern_type_filter=PatternType.LITERAL,
                principal=binding.principal,
                host=ANY_HOST,
                operation=binding.operation,
                permission_type=Permission.ALLOW,
            )
            response = await admin._send_request(request)
            for error_code, error_message in response.creation_responses:
                if error_code != _NO_ERROR:
                    problems.append(
                        f"{binding}: {for_code(error_code).__name__} {error_message or ''}".strip()
                    )
    except KafkaError as error:
        raise TopicSetupError(f"writing the federation's ACLs failed: {error!r}") from error
    finally:
        await admin.close()
    if problems:
        raise TopicSetupError("the broker refused ACLs: " + "; ".join(problems))


async def provision_federation(
    bootstrap_servers: str,
    members: Mapping[str, MessagingConfig],
    *,
    tls: KafkaTls | None,
    shared_topics: Iterable[str] = (),
) -> list[AclBinding]:
    """As the federation admin: create every federation topic, then write every ACL."""
    await ensure_topics(
        bootstrap_servers,
        federation_topic_specs(members),
        client_id="a6-federation-admin",
        tls=tls,
        replicate_on_cluster=True,
    )
    bindings = federation_acls(members, shared_topics=shared_topics)
    await create_acls(bootstrap_servers, bindings, tls=tls)
    return bindings
