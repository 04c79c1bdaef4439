"""The one composition root: settings → engine → migrations → unit of work → Node.

Entrypoints (the API, the CLI, later the bus) receive a ``Node`` and reach the
ledger only through it; nothing else builds engines or reads settings.
"""

from __future__ import annotations

import asyncio
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

from a6wire.directory import (
    DirectoryAuthority,
    FederationDirectory,
    SignedDirectory,
    check_signed,
    newest_valid,
)
from a6wire.keys import (
    load_private_key_pem,
    next_key_path,
    public_key_base64,
    read_directory_file,
)
from a6wire.messages import Envelope
from a6wire.topics import inbox_topic
from a6wire.verification import verify_signature
from registry.adapters.database import make_engine, upgrade_database
from registry.adapters.directory_store import DIRECTORY_STATE_FILE_NAME, FileDirectoryStore
from registry.adapters.messaging import (
    MESSAGING_TABLES,
    KafkaSecurityError,
    MessagingConfig,
    MessagingEdge,
    RawKafkaRecord,
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
from registry.application.federation import LiveDirectory
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


# Looking up the directory topic's end offset when a record fails verification for
# an unknown member or key (registry.application.federation): one broker round trip.
DIRECTORY_END_REFRESH_TIMEOUT_S = 5.0


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
    # The directory version the node holds now; replaced live by published versions.
    directory: LiveDirectory
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
        live = self.directory

        async def handle_directory(record: RawKafkaRecord) -> None:
            await asyncio.to_thread(live.offer, record.value, record.offset)

        edge = MessagingEdge(
            self.config,
            self.engine,
            MESSAGING_TABLES,
            handle_inbox=handle_inbox,
            handle_decision=handle_decision,
            unit_index=unit_index,
            handle_snapshot=handle_snapshot,
            handle_directory=handle_directory if live.follows_published_versions else None,
            on_directory_end=live.note_end_offset,
        )
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return edge  # built outside the event loop: the end seen at assignment counts

        def refresh_end() -> None:
            # From a handler's worker thread: the edge's consumer lives on the loop.
            future = asyncio.run_coroutine_threadsafe(edge.report_directory_end(), loop)
            future.result(timeout=DIRECTORY_END_REFRESH_TIMEOUT_S)

        live.refresh_end = refresh_end
        return edge


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
        nobody = partial(verify_signature, directory=FederationDirectory(members=()))
        return Transfers(
            lambda: SqlTransferUnitOfWork(engine), clock, None, nobody, federation
        ), None
    # A configured directory means the operator wants transfers: a node that cannot
    # sign or verify would accept transfers it can never complete, so it refuses to start.
    live = _live_directory(settings, directory_path, clock)
    keys = _NodeKeys(settings.resolved_key_path)
    private_key = _signing_key(settings, live.current(), keys, clock)
    config = messaging_config or MessagingConfig.from_settings(settings)
    _check_kafka_tls(config)

    def registry_of(party: str) -> str | None:
        directory = live.current()
        return directory.member(party).registry_id if directory.is_member(party) else None

    def directory_inbox_topic(party: str) -> str:
        directory = live.current()
        return directory.member(party).inbox_topic if directory.is_member(party) else ""

    federation = FederationView(
        party=settings.party,
        registry_id=settings.registry_id,
        registry_of=registry_of,
        inbox_topic_of=inbox_topic_of or directory_inbox_topic,
        decision_topic=config.decision_topic,
        member_refusals=live.member_refusals,
    )
    signer = KeySigner(settings.party, private_key)
    live.subscribe(partial(_follow_key_rotation, settings.party, signer, keys))

    def verify(envelope: Envelope) -> None:
        # Records of the kept logs (decisions, their evidence, the unit log): judged
        # at their sent_at against the directory version held at this moment.
        verify_signature(envelope, live.current())

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
    return transfers, TransferMessaging(config, live, engine, unit_log, unit_index, reconciliation)


def _authority(settings: Settings) -> DirectoryAuthority | None:
    if not settings.federation_authority_keys:
        return None
    # Settings validation has checked every key and the threshold already.
    return DirectoryAuthority(
        public_keys=frozenset(settings.federation_authority_keys),
        threshold=settings.federation_authority_threshold,
    )


def _live_directory(settings: Settings, path: Path, clock: Clock) -> LiveDirectory:
    """The newest of the directory file and the version this node adopted last."""
    authority = _authority(settings)
    read = _load_directory(path)
    if isinstance(read, SignedDirectory):
        if authority is None:
            raise BootstrapError(
                f"the federation directory {path} (REGISTRY_DIRECTORY_PATH) is a signed version: "
                "set REGISTRY_FEDERATION_AUTHORITY_KEYS to the authority's public key(s)"
            )
        try:
            genesis = check_signed(read, authority)
        except ValueError as error:
            raise BootstrapError(
                f"the federation directory {path} (REGISTRY_DIRECTORY_PATH) is not signed by "
                f"the configured authority: {error}"
            ) from None
    else:
        genesis = read
    store = FileDirectoryStore(settings.data_dir / DIRECTORY_STATE_FILE_NAME)
    stored = store.load() if authority is not None else None
    current = newest_valid(genesis, [] if stored is None else [stored], authority)
    log.info(
        "federation directory loaded",
        party=settings.party,
        version=current.version,
        follows_published_versions=authority is not None,
    )
    return LiveDirectory(current, authority, store, party=settings.party, now=clock.now)


def _load_directory(path: Path) -> FederationDirectory | SignedDirectory:
    try:
        return read_directory_file(path)
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


class _NodeKeys:
    """The node's signing keys on disk: REGISTRY_KEY_PATH and, during a rotation, ``<key>.next``."""

    def __init__(self, key_path: Path) -> None:
        self.key_path = key_path
        self.next_path = next_key_path(key_path)

    def load(self) -> dict[str, Ed25519PrivateKey]:
        """Every key the node holds, by its public key (BootstrapError for a bad file)."""
        keys = [_load_key(self.key_path)]
        if self.next_path.exists():
            keys.append(_load_key(self.next_path))
        return {public_key_base64(key): key for key in keys}


def _signing_key(
    settings: Settings, directory: FederationDirectory, keys: _NodeKeys, clock: Clock
) -> Ed25519PrivateKey:
    """The key the directory says this node signs with; refuse to start as a member it
    does not describe, since peers would refuse every message."""
    if not directory.is_member(settings.party):
        raise BootstrapError(
            f"{settings.party} is not in the federation directory (version {directory.version})"
        )
    member = directory.member(settings.party)
    if member.registry_id != settings.registry_id:
        raise BootstrapError(
            f"the directory lists {member.registry_id} for {settings.party}, "
            f"not {settings.registry_id}"
        )
    held = keys.load()
    if member.public_key_base64 in held:
        return held[member.public_key_base64]
    now = clock.now()
    for previous in member.previous_keys:
        if previous.public_key_base64 in held and now < previous.valid_until:
            log.warning(
                "signing with the previous key: the directory's current key is not installed",
                party=settings.party,
                valid_until=previous.valid_until.isoformat(),
                install_at=str(keys.next_path),
            )
            return held[previous.public_key_base64]
    raise BootstrapError(
        f"the directory's public key for {settings.party} (version {directory.version}) is "
        f"not this node's key ({keys.key_path}, or {keys.next_path} during a rotation)"
    )


def _follow_key_rotation(
    party: str, signer: KeySigner, keys: _NodeKeys, directory: FederationDirectory
) -> None:
    """After a new directory version: sign with the key it names for this Party, if held."""
    if not directory.is_member(party):
        log.error("this Party is not in the adopted federation directory", party=party)
        return
    wanted = directory.member(party).public_key_base64
    if public_key_base64(signer.public_key) == wanted:
        return
    try:
        held = keys.load()
    except BootstrapError as error:
        log.error("the node's keys cannot be read for a rotation", party=party, detail=str(error))
        return
    if wanted not in held:
        log.error(
            "the directory names a signing key this node does not hold; still signing with "
            "the previous key",
            party=party,
            version=directory.version,
            install_at=str(keys.next_path),
        )
        return
    signer.use_key(held[wanted])
    log.info("signing with the key the directory names", party=party, version=directory.version)
