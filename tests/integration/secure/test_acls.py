"""Real clients on a real TLS broker with ACLs written from the federation's members.

Each Party connects with its own certificate (principal ``User:party.<CODE>``); the
federation admin created the topics and wrote the ACLs (``provision_federation``,
what deploy/kafka/acls.py runs). One Party cannot read another's inbox, use its
consumer group, or create or delete a topic; a client without a certificate cannot
connect at all; and two nodes, each with its own certificate, still complete a
transfer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)
from fastapi.testclient import TestClient

from a6wire.directory import FederationDirectory, FederationMember
from a6wire.keys import generate_private_key, public_key_base64, save_private_key_pem
from a6wire.topics import DIRECTORY_RECORD_KEY, inbox_topic
from registry.adapters.messaging import (
    MessagingConfig,
    provision_federation,
    tls_from_settings,
)
from registry.adapters.messaging.security import client_security_options
from registry.application.commands import (
    IssueUnits,
    OpenAccount,
    RecordAuthorisation,
    RegisterCooperativeApproach,
)
from registry.bootstrap import build_node, build_transfers
from registry.entrypoints.api import create_app
from registry.settings import load_settings
from tests.integration.messaging.support import UniqueNames
from tests.integration.transfers.test_two_nodes import (
    OPERATOR_TOKEN,
    RECEIVER_ACCOUNT,
    SENDER_ACCOUNT,
    RunningNode,
    _body,
)
from tests.unit.application.support import (
    PARTNER,
    PARTNER_REGISTRY_ID,
    PARTY,
    REGISTRY_ID,
    approach,
    authorisation,
    line,
)

from .conftest import SecureKafka

# A Kafka error code in an admin response: the broker refused for lack of an ACL.
TOPIC_AUTHORIZATION_FAILED = 29
CLUSTER_AUTHORIZATION_FAILED = 31
READ_TIMEOUT_MS = 10_000
REFUSAL_TIMEOUT_S = 30.0


def _members(secure_kafka: SecureKafka, names: UniqueNames) -> dict[str, MessagingConfig]:
    """Each Party's messaging config on unique topic names, over its own certificate."""
    return {
        party: dataclasses.replace(
            names.config(party, secure_kafka.bootstrap, decision_partitions=1),
            tls=secure_kafka.party_tls(party),
            create_topics=False,
            directory_topic=names.topic("directory"),
        )
        for party in (PARTY, PARTNER)
    }


@pytest.fixture
def names() -> UniqueNames:
    return UniqueNames(f"test.{uuid.uuid4().hex[:12]}")


@pytest.fixture
def members(secure_kafka: SecureKafka, names: UniqueNames) -> dict[str, MessagingConfig]:
    configs = _members(secure_kafka, names)
    asyncio.run(provision_federation(secure_kafka.bootstrap, configs, tls=secure_kafka.admin_tls))
    return configs


def _options(config: MessagingConfig) -> dict[str, object]:
    return client_security_options(config.tls)


async def _read_one(config: MessagingConfig, topic: str, *, group_id: str | None) -> bytes:
    """The first record of partition 0 of ``topic``, read with ``config``'s identity."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=config.bootstrap_servers,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **_options(config),
    )
    await consumer.start()
    try:
        if group_id is None:
            consumer.assign([TopicPartition(topic, 0)])
        else:
            consumer.subscribe([topic])
        async with asyncio.timeout(REFUSAL_TIMEOUT_S):
            while True:
                fetched = await consumer.getmany(timeout_ms=READ_TIMEOUT_MS)
                for records in fetched.values():
                    value = records[0].value
                    assert isinstance(value, bytes)
                    return value
    finally:
        await consumer.stop()


async def _send(
    config: MessagingConfig, topic: str, value: bytes, key: bytes | None = None
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=config.bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        **_options(config),
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key, partition=0)
    finally:
        await producer.stop()


def test_a_party_reads_its_own_inbox_and_not_another_partys(
    members: dict[str, MessagingConfig],
) -> None:
    owner, other = members[PARTY], members[PARTNER]
    # The other Party may write to the owner's inbox (that is how PREPAREs arrive)...
    asyncio.run(_send(other, owner.inbox_topic, b"for the owner"))
    # ...and the owner reads it with its own group,
    assert asyncio.run(_read_one(owner, owner.inbox_topic, group_id=owner.inbox_group_id)) == (
        b"for the owner"
    )
    # but the other Party can read it neither without a group nor with its own.
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(_read_one(other, owner.inbox_topic, group_id=None))
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(_read_one(other, owner.inbox_topic, group_id=other.inbox_group_id))


def test_a_party_cannot_use_another_partys_consumer_group(
    members: dict[str, MessagingConfig],
) -> None:
    owner, other = members[PARTY], members[PARTNER]
    asyncio.run(_send(owner, owner.decision_topic, b"a decision"))
    # The decision topic is readable by both, but a group belongs to one Party: joining
    # the owner's could move its committed offsets past records it never applied.
    assert asyncio.run(
        _read_one(other, owner.decision_topic, group_id=other.decision_group_id)
    ) == (b"a decision")
    with pytest.raises(GroupAuthorizationFailedError):
        asyncio.run(_read_one(other, owner.decision_topic, group_id=owner.decision_group_id))


def test_a_party_cannot_write_to_its_own_inbox(members: dict[str, MessagingConfig]) -> None:
    # Only other members send to an inbox; a node forging records into its own is refused.
    owner = members[PARTY]
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(_send(owner, owner.inbox_topic, b"self-made"))


def test_only_the_federation_admin_writes_the_directory_topic(
    members: dict[str, MessagingConfig], secure_kafka: SecureKafka
) -> None:
    # Every member reads the published directory versions with its own group; a
    # member writing one (even unsigned by the authority, which every node refuses)
    # is stopped by the broker first.
    member = members[PARTY]
    topic = member.directory_topic
    assert topic is not None
    authority = dataclasses.replace(member, tls=secure_kafka.admin_tls)
    # A compacted topic takes keyed records only, as the publisher writes them.
    asyncio.run(_send(authority, topic, b"directory version 1", DIRECTORY_RECORD_KEY))
    for config in members.values():
        assert asyncio.run(_read_one(config, topic, group_id=config.directory_group_id)) == (
            b"directory version 1"
        )
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(_send(member, topic, b"a version of our own", DIRECTORY_RECORD_KEY))


async def _admin_attempts(config: MessagingConfig, names: UniqueNames) -> tuple[int, int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=config.bootstrap_servers, **_options(config))
    await admin.start()
    try:
        deleted = await admin.delete_topics([config.decision_topic])
        created = await admin.create_topics(
            [NewTopic(names.topic("rogue"), num_partitions=1, replication_factor=1)]
        )
        # Altering: more partitions would move every transfer to another partition.
        # (aiokafka raises this refusal rather than returning its code.)
        try:
            await admin.create_partitions({config.decision_topic: NewPartitions(5)})
            alter_code = 0
        except TopicAuthorizationFailedError as error:
            alter_code = error.errno
        described = await admin.describe_topics([config.decision_topic])
    finally:
        await admin.close()
    assert described[0]["error_code"] == 0, "the decision topic must still exist"
    assert len(described[0]["partitions"]) == 1, "and keep its one partition"
    return (
        deleted.topic_error_codes[0][1],
        created.topic_errors[0][1],
        alter_code,
    )


def test_a_party_cannot_delete_create_or_alter_a_topic(
    members: dict[str, MessagingConfig], names: UniqueNames
) -> None:
    delete_code, create_code, alter_code = asyncio.run(_admin_attempts(members[PARTY], names))
    assert delete_code == TOPIC_AUTHORIZATION_FAILED
    assert alter_code == TOPIC_AUTHORIZATION_FAILED
    assert create_code in (TOPIC_AUTHORIZATION_FAILED, CLUSTER_AUTHORIZATION_FAILED)


async def _connect_without_certificate(bootstrap: str, ca_path: Path) -> None:
    context = ssl.create_default_context(cafile=str(ca_path))
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        security_protocol="SSL",
        ssl_context=context,
        request_timeout_ms=5_000,
    )
    try:
        await producer.start()
    finally:
        await producer.stop()


def test_a_client_without_a_federation_certificate_cannot_connect(
    secure_kafka: SecureKafka,
) -> None:
    with pytest.raises(KafkaConnectionError):
        asyncio.run(
            _connect_without_certificate(
                secure_kafka.bootstrap, secure_kafka.pki_dir / "ca" / "ca.crt"
            )
        )


@pytest.fixture
def secure_federation(
    secure_kafka: SecureKafka,
    members: dict[str, MessagingConfig],
    names: UniqueNames,
    tmp_path: Path,
) -> Iterator[dict[str, RunningNode]]:
    """Two real nodes, each configured through its settings with its own certificate."""
    parties = {PARTY: REGISTRY_ID, PARTNER: PARTNER_REGISTRY_ID}
    keys = {party: generate_private_key() for party in parties}
    directory = FederationDirectory(
        members=tuple(
            FederationMember(
                party=party,
                registry_id=registry_id,
                public_key_base64=public_key_base64(keys[party]),
                inbox_topic=inbox_topic(party),
            )
            for party, registry_id in parties.items()
        )
    )
    directory_path = tmp_path / "directory.json"
    directory_path.write_text(directory.model_dump_json())
    running: dict[str, RunningNode] = {}
    with ExitStack() as stack:
        for party, registry_id in parties.items():
            (tmp_path / party).mkdir()
            key_path = tmp_path / party / "node.pem"
            save_private_key_pem(keys[party], key_path)
            tls = secure_kafka.party_tls(party)
            settings = load_settings(
                party=party,
                registry_id=registry_id,
                database_url=f"sqlite:///{tmp_path / party / 'registry.sqlite3'}",
                data_dir=tmp_path / party,
                operator_tokens=[OPERATOR_TOKEN],
                key_path=key_path,
                directory_path=directory_path,
                kafka_bootstrap_servers=secure_kafka.bootstrap,
                kafka_security_protocol="SSL",
                kafka_ssl_ca_path=tls.ca_path,
                kafka_ssl_cert_path=tls.cert_path,
                kafka_ssl_key_path=tls.key_path,
            )
            base = build_node(settings, migrate=True)
            stack.callback(base.close)
            # The settings' TLS identity on the test's unique topic names.
            config = dataclasses.replace(
                members[party], tls=tls_from_settings(settings), create_topics=False
            )
            transfers, messaging = build_transfers(
                settings,
                base.engine,
                base.clock,
                messaging_config=config,
                inbox_topic_of=lambda p: names.topic(f"node.{p}.inbox"),
            )
            node = dataclasses.replace(base, transfers=transfers, messaging=messaging)
            client = TestClient(
                create_app(node), headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}
            )
            stack.enter_context(client)
            running[party] = RunningNode(node, client)
        sender, receiver = running[PARTY], running[PARTNER]
        sender.ledger().run(RegisterCooperativeApproach(approach()))
        sender.ledger().run(RecordAuthorisation(authorisation()))
        sender.ledger().run(OpenAccount(SENDER_ACCOUNT))
        receiver.ledger().run(RegisterCooperativeApproach(approach()))
        receiver.ledger().run(OpenAccount(RECEIVER_ACCOUNT))
        sender.ledger().run(IssueUnits(SENDER_ACCOUNT, (line(100),)))
        yield running


def test_a_transfer_commits_between_nodes_with_their_own_certificates(
    secure_federation: dict[str, RunningNode],
) -> None:
    sender, receiver = secure_federation[PARTY], secure_federation[PARTNER]
    response = sender.client.post(
        "/v1/transfers?wait_s=30", json=_body(), headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    assert response.status_code == 202, response.text
    transfer_id = response.json()["transfer_id"]
    assert sender.wait_final(transfer_id, completed=True)["status"] == "COMMITTED"
    assert receiver.wait_final(transfer_id)["status"] == "COMMITTED"
    assert sender.ledger().held(SENDER_ACCOUNT) == 60
    assert receiver.ledger().held(RECEIVER_ACCOUNT) == 40
