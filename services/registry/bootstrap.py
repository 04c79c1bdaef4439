"""The one composition root: settings → engine → migrations → unit of work → Node.

Entrypoints (the API, the CLI, later the bus) receive a ``Node`` and reach the
ledger only through it; nothing else builds engines or reads settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from a6wire.directory import FederationDirectory
from a6wire.keys import load_federation_directory, load_private_key_pem, public_key_base64
from a6wire.topics import inbox_topic
from a6wire.verification import verify_signature
from registry.adapters.database import make_engine, upgrade_database
from registry.adapters.messaging import (
    MESSAGING_TABLES,
    KafkaSecurityError,
    MessagingConfig,
    MessagingEdge,
    RecordHandler,
    UnitIndexHandlers,
)
from registry.adapters.reconciliation import SqlReconciliationUnitOfWork
from registry.adapters.transfer_unit_of_work import SqlTransferUnitOfWork
from registry.adapters.unit_index import SqlUnitIndexUnitOfWork, UnitLogPublisher
from registry.adapters.unit_of_work import SqlAlchemyUnitOfWork
from registry.application import handlers
from registry.application.commands import InitialiseRegistry
from registry.application.custody import UnitIndex
from registry.application.ports import Clock, UnitOfWork
from registry.application.reconciliation import Reconciliation
from registry.application.transfers import (
    FederationView,
    KeySigner,
    Transfers,
    TransferUnitOfWork,
)
from registry.domain.errors import DomainError, ReasonCode
from registry.settings import Settings

log = structlog.get_logger(__name__)

# A Party's snapshot older than this many reconciliation periods is not compared
# (registry.application.reconciliation): three leave room for a late relay or a
# slow consumer, and no old snapshot read from the topic's history is compared.
SNAPSHOT_STALE_AFTER_PERIODS = 3
# ...and never less than a minute, for the short periods of tests and demos.
SNAPSHOT_STALE_AFTER_MIN_S = 60.0


class SystemClock:
    """Wall-clock time in UTC; tests pass a fixed clock instead."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class BootstrapError(Exception):
    """The node cannot start as configured; the message says what to change."""


@dataclass(frozen=True)
class TransferMessaging:
    """The Kafka side of cross-border transfers: present when the node has a
    federation directory and a key (``REGISTRY_DIRECTORY_PATH``, ``REGISTRY_KEY_PATH``)."""

    config: MessagingConfig
    directory: FederationDirectory
    engine: Engine
    # The federation unit log's writer (the ledger's unit of work announces through
    # it) and this node's unit index (PROTOCOL.md invariant 8).
    unit_log: UnitLogPublisher | None = None
    unit_index: UnitIndex | None = None
    # Publishes this node's holdings snapshot and compares everyone's.
    reconciliation: Reconciliation | None = None

    def build_edge(
        self,
        *,
        handle_inbox: RecordHandler,
        handle_decision: RecordHandler,
        unit_index: UnitIndexHandlers | None = None,
        handle_snapshot: RecordHandler | None = None,
    ) -> MessagingEdge:
        return MessagingEdge(
            self.config,
            self.engine,
            MESSAGING_TABLES,
            handle_inbox=handle_inbox,
            handle_decision=handle_decision,
            unit_index=unit_index,
            handle_snapshot=handle_snapshot,
        )


@dataclass(frozen=True)
class Node:
    """Everything an entrypoint needs to serve one Party's registry."""

    settings: Settings
    engine: Engine
    unit_of_work: Callable[[], UnitOfWork]
    clock: Clock
    # Cross-border transfers. Without a directory and key the node runs API-only
    # (``messaging`` is None): transfers can be read but not started, and no Kafka
    # connection is made.
    transfers: Transfers
    messaging: TransferMessaging | None = None

    def database_reachable(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError:
            log.warning("database unreachable", exc_info=True)
            return False
        return True

    def close(self) -> None:
        self.engine.dispose()


def build_node(settings: Settings, *, migrate: bool = True, clock: Clock | None = None) -> Node:
    """Wire one node; with ``migrate`` also bring the database up to date and record
    the registry's identity on first start."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url
    if migrate:
        upgrade_database(url)
    engine = make_engine(url)
    clock = clock or SystemClock()
    transfers, messaging = build_transfers(settings, engine, clock)
    unit_log = None if messaging is None else messaging.unit_log

    def unit_of_work() -> UnitOfWork:
        # A fresh unit of work per command: each is one transaction on a pooled connection.
        return SqlAlchemyUnitOfWork(engine, unit_log)

    node = Node(settings, engine, unit_of_work, clock, transfers, messaging)
    if migrate:
        _ensure_identity(node)
    return node


def _ensure_identity(node: Node) -> None:
    """Record this registry's Party and id on first start; refuse a database of another."""
    settings = node.settings
    try:
        recorded = handlers.get_registry_node(node.unit_of_work(), node.clock)
    except DomainError as error:
        if error.reason is not ReasonCode.REGISTRY_NOT_INITIALISED:
            raise
        command = InitialiseRegistry(party=settings.party, registry_id=settings.registry_id)
        handlers.initialise_registry(node.unit_of_work(), node.clock, command)
        log.info("registry initialised", party=settings.party, registry_id=settings.registry_id)
        return
    if (recorded.party, recorded.registry_id) != (settings.party, settings.registry_id):
        raise BootstrapError(
            f"the database belongs to registry {recorded.registry_id} of {recorded.party}, "
            f"not {settings.registry_id} of {settings.party}: check REGISTRY_DATABASE_URL"
        )


def build_transfers(
    settings: Settings,
    engine: Engine,
    clock: Clock,
    *,
    messaging_config: MessagingConfig | None = None,
    inbox_topic_of: Callable[[str], str] | None = None,
) -> tuple[Transfers, TransferMessaging | None]:
    """The transfer handlers over this engine; with messaging when a directory is configured.

    ``messaging_config`` and ``inbox_topic_of`` let tests run two nodes on unique
    topic names; production derives both from the federation's standard names.
    """

    directory_path = settings.directory_path
    if directory_path is None:
        # No federation configured: an API-only node (transfers can be read, not started).
        federation = FederationView(
            settings.party, settings.registry_id, lambda _: None, inbox_topic, ""
        )
        verify = partial(verify_signature, directory=FederationDirectory(members=()))
        return Transfers(
            lambda: SqlTransferUnitOfWork(engine), clock, None, verify, federation
        ), None
    # A configured directory means the operator wants transfers: a node that cannot
    # sign or verify would accept transfers it can never complete, so it refuses to start.
    directory = _load_directory(directory_path)
    private_key = _load_key(settings.resolved_key_path)
    _check_membership(settings, directory, public_key_base64(private_key))
    config = messaging_config or MessagingConfig.from_settings(settings)
    _check_kafka_tls(config)

    def registry_of(party: str) -> str | None:
        return directory.member(party).registry_id if directory.is_member(party) else None

    def directory_inbox_topic(party: str) -> str:
        return directory.member(party).inbox_topic if directory.is_member(party) else ""

    federation = FederationView(
        party=settings.party,
        registry_id=settings.registry_id,
        registry_of=registry_of,
        inbox_topic_of=inbox_topic_of or directory_inbox_topic,
        decision_topic=config.decision_topic,
    )
    signer = KeySigner(settings.party, private_key)
    verify = partial(verify_signature, directory=directory)
    unit_log = UnitLogPublisher(signer.seal, config.unit_log_topic, clock.now)

    def transfer_unit_of_work() -> TransferUnitOfWork:
        # Uses and cancellations also go through the transfer handlers (first-transfer
        # notices): their unit-log announcements must join the same transaction.
        return SqlTransferUnitOfWork(engine, unit_log)

    transfers = Transfers(transfer_unit_of_work, clock, signer, verify, federation)
    unit_index = UnitIndex(lambda: SqlUnitIndexUnitOfWork(engine), verify, clock=clock.now)

    def reconciliation_unit_of_work() -> SqlReconciliationUnitOfWork:
        return SqlReconciliationUnitOfWork(
            engine,
            party=settings.party,
            snapshot_topic=config.snapshot_topic,
            unit_log_topic=config.unit_log_topic,
        )

    reconciliation = Reconciliation(
        reconciliation_unit_of_work,
        unit_index,
        signer.seal,
        party=settings.party,
        registry_id=settings.registry_id,
        clock=clock.now,
        stale_after=timedelta(
            seconds=SNAPSHOT_STALE_AFTER_PERIODS * settings.reconciliation_period_s
        ),
    )
    return transfers, TransferMessaging(
        config, directory, engine, unit_log, unit_index, reconciliation
    )


def _load_directory(path: Path) -> FederationDirectory:
    try:
        return load_federation_directory(path)
    except FileNotFoundError:
        raise BootstrapError(
            f"the federation directory {path} (REGISTRY_DIRECTORY_PATH) does not exist"
        ) from None
    except OSError as error:
        raise BootstrapError(
            f"the federation directory {path} (REGISTRY_DIRECTORY_PATH) cannot be read: "
            f"{error.strerror or error}"
        ) from None
    except ValueError as error:
        raise BootstrapError(
            f"the federation directory {path} (REGISTRY_DIRECTORY_PATH) is not a valid "
            f"directory file: {_first_line(error)}"
        ) from None


def _check_kafka_tls(config: MessagingConfig) -> None:
    """Load the node's Kafka TLS files now: a bad one stops the node, not its first send."""
    if config.tls is None:
        return
    try:
        config.tls.ssl_context()
    except KafkaSecurityError as error:
        raise BootstrapError(str(error)) from None


def _load_key(path: Path) -> Ed25519PrivateKey:
    try:
        return load_private_key_pem(path)
    except FileNotFoundError:
        raise BootstrapError(
            f"the node key {path} (REGISTRY_KEY_PATH) does not exist, so this node could "
            "not sign transfers: run `registry-node init` or point REGISTRY_KEY_PATH at the key"
        ) from None
    except OSError as error:
        raise BootstrapError(
            f"the node key {path} (REGISTRY_KEY_PATH) cannot be read: {error.strerror or error}"
        ) from None
    except ValueError:
        # cryptography's explanation is a paragraph with a link; the cause is the file.
        raise BootstrapError(
            f"the node key {path} (REGISTRY_KEY_PATH) is not an Ed25519 private key in PEM"
        ) from None


def _first_line(error: ValueError) -> str:
    """Pydantic explains over several lines; a refusal is one sentence."""
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the file"
        return f"{where}: {first['msg']}"
    return str(error).splitlines()[0] if str(error) else error.__class__.__name__


def _check_membership(settings: Settings, directory: FederationDirectory, public_key: str) -> None:
    """Refuse to start as a member the directory does not describe: peers would refuse us."""
    if not directory.is_member(settings.party):
        raise BootstrapError(f"{settings.party} is not in the federation directory")
    member = directory.member(settings.party)
    if member.registry_id != settings.registry_id:
        raise BootstrapError(
            f"the directory lists {member.registry_id} for {settings.party}, "
            f"not {settings.registry_id}"
        )
    if member.public_key_base64 != public_key:
        raise BootstrapError(
            f"the directory's public key for {settings.party} is not this node's key "
            "(REGISTRY_KEY_PATH)"
        )
