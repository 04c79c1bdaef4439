"""Ports the handlers depend on, as Protocols; adapters implement them.

Every repository belongs to one unit of work and sees only that unit's
transaction. Repositories never commit; the handler commits the unit of work
once, so each command is atomic.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

from registry.domain.accounts import Account, AccountKind
from registry.domain.adjustments import CorrespondingAdjustment
from registry.domain.approaches import CooperativeApproach
from registry.domain.audit import AuditAction, AuditEntry
from registry.domain.authorisations import Authorisation
from registry.domain.blocks import BlockStatus, SerialBlock
from registry.domain.custody import UnitAnnouncement
from registry.domain.ndc import NdcRecord
from registry.domain.registry_node import RegistryNode
from registry.domain.transfers import Reservation, ReservationState, TransferDirection

JsonValue = Any


@dataclass(frozen=True, slots=True)
class ClassQuantity:
    """Units of one class (approach, vintage, metric) in one status, in accounts of one kind."""

    account_kind: AccountKind
    cooperative_approach_id: str
    vintage: int
    metric: str
    status: BlockStatus
    quantity: int


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class RegistryNodeRepository(Protocol):
    def get(self) -> RegistryNode | None: ...

    def lock(self) -> RegistryNode | None:
        """Like ``get``, and serialise with every other command that locks the node."""
        ...

    def add(self, node: RegistryNode) -> None: ...

    def update(self, node: RegistryNode) -> None: ...

    def allocate_serials(self, quantity: int) -> int:
        """Reserve the next ``quantity`` serials for issuance and return the first.

        The counter moves in the same transaction as the issued blocks, so a
        rolled-back issuance leaves no block with those serials behind.
        """
        ...


class AccountRepository(Protocol):
    def get(self, account_id: str) -> Account | None: ...

    def lock(self, account_id: str) -> Account | None:
        """Like ``get``, and serialise concurrent commands on this account until commit."""
        ...

    def add(self, account: Account) -> None: ...

    def update(self, account: Account) -> None: ...

    def list(self) -> list[Account]: ...


class CooperativeApproachRepository(Protocol):
    def get(self, cooperative_approach_id: str) -> CooperativeApproach | None: ...

    def add(self, approach: CooperativeApproach) -> None: ...

    def list(self) -> list[CooperativeApproach]: ...


class AuthorisationRepository(Protocol):
    """Versions of LoAs, keyed by the authorising Party and the authorisation id.

    A registry keeps its own Party's LoAs and the snapshots of foreign LoAs that
    came with acquired units, which it needs to check an onward transfer.
    """

    def current(self, authorising_party: str, authorisation_id: str) -> Authorisation | None:
        """The highest version recorded for this LoA."""
        ...

    def get(
        self, authorising_party: str, authorisation_id: str, version: int
    ) -> Authorisation | None: ...

    def add(self, authorisation: Authorisation) -> None: ...

    def history(self, authorising_party: str, authorisation_id: str) -> list[Authorisation]: ...

    def list_current(self, authorising_party: str) -> list[Authorisation]:
        """The highest version of every LoA of one Party, ordered by authorisation id."""
        ...

    def list_versions(self, authorising_party: str) -> list[Authorisation]:
        """Every version of every LoA of one Party, ordered by authorisation id and version."""
        ...

    def counted_quantity(self, authorisation_id: str) -> int:
        """Units counted against this Party's own LoA's cap (first transfers, pending or done)."""
        ...

    def add_counted_quantity(self, authorisation_id: str, delta: int) -> None: ...


class BlockRepository(Protocol):
    def add_many(self, blocks: Sequence[SerialBlock]) -> None:
        """Insert new blocks (``block_id`` None)."""
        ...

    def update_many(self, blocks: Sequence[SerialBlock]) -> None:
        """Overwrite stored blocks by ``block_id``."""
        ...

    def iter_held(
        self,
        account_id: str,
        *,
        cooperative_approach_id: str | None = None,
        vintage: int | None = None,
    ) -> Iterator[SerialBlock]:
        """HELD blocks of one account ordered by (originating registry, first serial), lazily."""
        ...

    def in_account_overlapping(
        self, account_id: str, originating_registry_id: str, first_serial: int, last_serial: int
    ) -> list[SerialBlock]:
        """Blocks present in one account (HELD, RESERVED, INCOMING) overlapping the range."""
        ...

    def present_overlapping(
        self, originating_registry_id: str, first_serial: int, last_serial: int
    ) -> list[SerialBlock]:
        """Blocks present in this registry (see PRESENT_STATUSES) overlapping the range."""
        ...

    def for_transfer(self, transfer_id: str) -> list[SerialBlock]: ...

    def transferred_out_overlapping(
        self, originating_registry_id: str, first_serial: int, last_serial: int
    ) -> list[SerialBlock]:
        """TRANSFERRED_OUT blocks overlapping the range, by first serial; units that left
        more than once have one such block per departure, so these may overlap."""
        ...

    def delete_many(self, blocks: Sequence[SerialBlock]) -> None: ...

    def quantity_by_status(self) -> dict[BlockStatus, int]: ...

    def quantity_in_account(self, account_id: str, status: BlockStatus) -> int: ...

    def list_account(self, account_id: str) -> list[SerialBlock]: ...

    def quantities_by_class(self) -> list[ClassQuantity]:
        """Units summed per account kind, unit class (approach, vintage, metric) and status.

        Computed by the store (GROUP BY), never by loading the blocks.
        """
        ...


class AdjustmentRepository(Protocol):
    def add_many(self, entries: Sequence[CorrespondingAdjustment]) -> None: ...

    def balance(self, party: str, year: int, metric: str) -> int: ...

    def for_party(self, party: str) -> list[CorrespondingAdjustment]: ...


class NdcRepository(Protocol):
    """The versions of a Party's NDC configuration; append-only, newest is current."""

    def current(self, party: str) -> NdcRecord | None: ...

    def add(self, record: NdcRecord) -> None:
        """Store a new version; the handler holds the registry lock, so versions never race."""
        ...


class AuditRepository(Protocol):
    """Append-only: there is deliberately no update or delete."""

    def append_many(self, entries: Sequence[AuditEntry]) -> None: ...

    def for_block(
        self, originating_registry_id: str, first_serial: int, last_serial: int
    ) -> list[AuditEntry]:
        """Entries whose range overlaps the given one, oldest first."""
        ...

    def total_quantity(self, action: AuditAction) -> int: ...

    def with_actions(self, actions: Collection[AuditAction]) -> list[AuditEntry]:
        """Every entry of one of ``actions``, oldest first."""
        ...

    def between(
        self, occurred_from: datetime | None, occurred_before: datetime
    ) -> list[AuditEntry]:
        """Entries with ``occurred_from <= occurred_at < occurred_before``, oldest first.

        ``occurred_from`` None means from the first entry.
        """
        ...


class ReservationRepository(Protocol):
    """This node's side of its cross-border transfers, keyed by (transfer id, coordinator).

    A node admits one coordinator per transfer id (``check_transfer_id_claims``),
    and the store refuses a second reservation under an id it holds, so ``get``
    by id alone finds the one claim that stands in the way of a new transfer.
    """

    def get(self, transfer_id: str) -> Reservation | None:
        """The reservation under this transfer id, whichever coordinator it is for."""
        ...

    def lock(self, transfer_id: str, coordinator_party: str) -> Reservation | None:
        """The reservation of exactly this transfer, locked against a concurrent change.

        None when the id is unknown here or belongs to another coordinator's transfer.
        """
        ...

    def add(self, reservation: Reservation) -> None: ...

    def update(self, reservation: Reservation) -> None: ...

    def list(
        self,
        *,
        state: ReservationState | None = None,
        direction: TransferDirection | None = None,
    ) -> list[Reservation]: ...


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """The first answer to an API request, replayed for a repeat with the same key."""

    idempotency_key: str
    principal: str
    method: str
    path: str
    request_fingerprint: str
    response_status: int
    response_body: JsonValue
    created_at: datetime


class StorageUnavailableError(Exception):
    """This node's own database failed (unreachable, a conflict, a full disk).

    Adapters raise it in place of their driver's errors. A retry can succeed,
    so a message being handled when it happens is redelivered, never refused.
    """


class IdempotencyKeyExists(Exception):  # noqa: N818 - the API layer already imports this name
    """``put`` was called for a (key, principal) already stored."""


class IdempotencyRepository(Protocol):
    def get(self, idempotency_key: str, principal: str) -> IdempotencyRecord | None: ...

    def put(self, record: IdempotencyRecord) -> None:
        """Store the record; raise IdempotencyKeyExists if the key is taken for the principal."""
        ...


class UnitLogPort(Protocol):
    """The federation unit log, written in the unit of work's transaction (an outbox).

    A node without a key and directory (API-only) announces nothing.
    """

    def announce(self, announcements: Sequence[UnitAnnouncement]) -> None: ...

    @property
    def can_announce(self) -> bool:
        """False on a node that announces nothing (no key, no directory)."""
        ...

    def announced(self) -> list[UnitAnnouncement]:
        """Everything this node ever announced (sent or not), from its own records."""
        ...


class UnitOfWork(Protocol):
    """One database transaction. ``with uow:`` begins it; leaving without commit rolls back.

    The repositories are read-only properties: a handler uses them, never swaps them,
    and a read-only member lets an adapter's concrete repository types satisfy it.
    """

    @property
    def registry_node(self) -> RegistryNodeRepository: ...

    @property
    def accounts(self) -> AccountRepository: ...

    @property
    def approaches(self) -> CooperativeApproachRepository: ...

    @property
    def authorisations(self) -> AuthorisationRepository: ...

    @property
    def blocks(self) -> BlockRepository: ...

    @property
    def adjustments(self) -> AdjustmentRepository: ...

    @property
    def audit(self) -> AuditRepository: ...

    @property
    def ndc(self) -> NdcRepository: ...

    @property
    def reservations(self) -> ReservationRepository: ...

    @property
    def unit_log(self) -> UnitLogPort: ...

    @property
    def idempotency(self) -> IdempotencyRepository: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...
