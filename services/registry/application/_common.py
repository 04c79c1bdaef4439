"""Helpers shared by the handlers: loading the node, picking units, writing changes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from registry.application.ports import UnitOfWork
from registry.domain.accounts import Account, check_usable_holding_account
from registry.domain.approaches import CooperativeApproach
from registry.domain.authorisations import Authorisation, AuthorisationRef
from registry.domain.blocks import BlockStatus, SerialBlock
from registry.domain.errors import DomainError, ReasonCode, refuse_if_any
from registry.domain.registry_node import RegistryNode
from registry.domain.selection import (
    Pick,
    QuantitySelection,
    Refusal,
    SerialRangeSelection,
    UnitSelection,
    pick_by_quantity,
    pick_by_range,
)
from registry.domain.transfers import Reservation, TransferDirection


def load_node(uow: UnitOfWork) -> RegistryNode:
    node = uow.registry_node.get()
    if node is None:
        raise DomainError(ReasonCode.REGISTRY_NOT_INITIALISED, "the registry is not initialised")
    return node


def lock_usable_account(uow: UnitOfWork, account_id: str) -> Account:
    """Lock a holding account for this unit of work; refuse unless usable (check 6)."""
    account = uow.accounts.lock(account_id)
    if account is None:
        raise DomainError(ReasonCode.UNKNOWN_ACCOUNT, f"account {account_id} does not exist")
    refuse_if_any(
        check_usable_holding_account(account), f"account {account_id} cannot send or receive units"
    )
    return account


class Lookups:
    """Per-command caches of approaches and authorisations, so a block loop queries once each."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self._approaches: dict[str, CooperativeApproach | None] = {}
        self._authorisations: dict[tuple[str, str], Authorisation | None] = {}
        self._counted: dict[str, int] = {}

    def approach(self, cooperative_approach_id: str) -> CooperativeApproach | None:
        if cooperative_approach_id not in self._approaches:
            self._approaches[cooperative_approach_id] = self._uow.approaches.get(
                cooperative_approach_id
            )
        return self._approaches[cooperative_approach_id]

    def known_approach(self, cooperative_approach_id: str) -> CooperativeApproach:
        approach = self.approach(cooperative_approach_id)
        if approach is None:
            raise DomainError(
                ReasonCode.UNKNOWN_COOPERATIVE_APPROACH,
                f"cooperative approach {cooperative_approach_id} is not registered here",
            )
        return approach

    def authorisation(self, block: SerialBlock) -> Authorisation | None:
        """The current version of the LoA a block names; its first transferring Party issued it."""
        attributes = block.attributes
        if attributes.authorisation_id is None:
            return None
        return self.authorisation_for(
            attributes.first_transferring_party, attributes.authorisation_id
        )

    def authorisation_for(self, party: str, authorisation_id: str) -> Authorisation | None:
        key = (party, authorisation_id)
        if key not in self._authorisations:
            self._authorisations[key] = self._uow.authorisations.current(party, authorisation_id)
        return self._authorisations[key]

    def counted_quantity(self, authorisation_id: str) -> int:
        if authorisation_id not in self._counted:
            self._counted[authorisation_id] = self._uow.authorisations.counted_quantity(
                authorisation_id
            )
        return self._counted[authorisation_id]

    def add_counted_quantity(self, authorisation_id: str, delta: int) -> None:
        counted = self.counted_quantity(authorisation_id)
        self._uow.authorisations.add_counted_quantity(authorisation_id, delta)
        self._counted[authorisation_id] = counted + delta


class Changes:
    """The blocks a command touched, keyed by block key, written once at the end.

    Keying by (originating registry, first serial) lets a later pick in the same
    command see an earlier pick's result, including pieces not yet stored.
    """

    def __init__(self) -> None:
        self.pieces: dict[tuple[str, int], SerialBlock] = {}
        self.deleted: list[SerialBlock] = []

    def put(self, blocks: Iterable[SerialBlock]) -> None:
        for block in blocks:
            self.pieces[block.key] = block

    def current(self, block: SerialBlock) -> SerialBlock:
        return self.pieces.get(block.key, block)

    def held_overlay(
        self, stored: Iterable[SerialBlock], account_id: str, cooperative_approach_id: str
    ) -> Iterator[SerialBlock]:
        """Stored HELD candidates as this command has changed them, then its unstored pieces."""
        for block in stored:
            current = self.current(block)
            if current.status is BlockStatus.HELD:
                yield current
        for piece in list(self.pieces.values()):
            if (
                piece.block_id is None
                and piece.status is BlockStatus.HELD
                and piece.account_id == account_id
                and piece.attributes.cooperative_approach_id == cooperative_approach_id
            ):
                yield piece

    def write(self, uow: UnitOfWork) -> None:
        stored = [block for block in self.pieces.values() if block.block_id is not None]
        new = [block for block in self.pieces.values() if block.block_id is None]
        if self.deleted:
            uow.blocks.delete_many(self.deleted)
        if stored:
            uow.blocks.update_many(stored)
        if new:
            uow.blocks.add_many(new)


def pick_units(
    uow: UnitOfWork,
    account_id: str,
    selection: UnitSelection,
    refuse: Refusal,
    authorisation: AuthorisationRef | None = None,
) -> Pick:
    """The units a command moves; with ``authorisation``, only units under that LoA."""
    if isinstance(selection, QuantitySelection):
        candidates = uow.blocks.iter_held(
            account_id,
            cooperative_approach_id=selection.cooperative_approach_id,
            vintage=selection.vintage,
        )
        return pick_by_quantity(candidates, selection.quantity, refuse, authorisation=authorisation)
    assert_range(selection)
    overlapping = uow.blocks.in_account_overlapping(
        account_id, selection.originating_registry_id, selection.first_serial, selection.last_serial
    )
    return pick_by_range(overlapping, selection, refuse, authorisation=authorisation)


def assert_range(selection: SerialRangeSelection) -> None:
    if selection.first_serial > selection.last_serial:
        raise DomainError(ReasonCode.NON_POSITIVE_QUANTITY, "the serial range is empty")


def lock_reservation(
    uow: UnitOfWork, transfer_id: str, coordinator_party: str, direction: TransferDirection
) -> Reservation:
    """The reservation of one cross-border transfer in this direction, locked for change.

    Found by the full transfer key: a decision about another coordinator's transfer
    under the same id never reaches this one.
    """
    reservation = uow.reservations.lock(transfer_id, coordinator_party)
    if reservation is None or reservation.direction is not direction:
        raise DomainError(
            ReasonCode.UNKNOWN_TRANSFER,
            f"no {direction.value.lower()} transfer {transfer_id} coordinated by "
            f"{coordinator_party}",
        )
    return reservation
