"""One abstract test class per port, run against the in-memory fake and the SQL adapter.

A backend subclass provides the ``uow`` fixture: an unentered unit of work over an
empty store. If a fake drifts from the real adapter, one of these fails.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from registry.application.ports import IdempotencyKeyExists, IdempotencyRecord, UnitOfWork
from registry.domain.accounts import Account, AccountKind, AccountStatus
from registry.domain.adjustments import AdjustmentCause, CorrespondingAdjustment
from registry.domain.approaches import GHG_METRIC
from registry.domain.audit import AuditAction, audit_entry
from registry.domain.authorisations import FirstTransferDefinition, Purpose
from registry.domain.blocks import BlockAttributes, BlockStatus, SerialBlock, TransferRole
from registry.domain.errors import DomainError, ReasonCode
from registry.domain.registry_node import RegistryNode
from registry.domain.transfers import Reservation, ReservationState, TransferDirection
from tests.unit.application.support import approach, authorisation

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ATTRIBUTES = BlockAttributes(
    "CA0001", "CHE01", "CHE", 2025, GHG_METRIC, "AR5", "ER", "energy", "solar"
)


def seed(uow: UnitOfWork, *account_ids: str) -> None:
    with uow:
        uow.registry_node.add(RegistryNode("CHE", "CHE01"))
        for account_id in account_ids:
            uow.accounts.add(Account(account_id, AccountKind.HOLDING))
        uow.commit()


def block(first: int, last: int, account_id: str = "A", **changes: object) -> SerialBlock:
    values: dict[str, object] = {
        "account_id": account_id,
        "status": BlockStatus.HELD,
        "first_serial": first,
        "last_serial": last,
        "attributes": ATTRIBUTES,
    }
    values.update(changes)
    return SerialBlock(**values)  # type: ignore[arg-type]


class UnitOfWorkContract:
    @pytest.fixture
    def uow(self) -> UnitOfWork:
        raise NotImplementedError

    def test_commit_makes_changes_visible(self, uow: UnitOfWork) -> None:
        seed(uow, "A")
        with uow:
            assert uow.accounts.get("A") is not None

    def test_leaving_without_commit_rolls_back(self, uow: UnitOfWork) -> None:
        seed(uow)
        with uow:
            uow.accounts.add(Account("A", AccountKind.HOLDING))
        with uow:
            assert uow.accounts.get("A") is None

    def test_an_exception_rolls_back(self, uow: UnitOfWork) -> None:
        seed(uow)

        def fail_inside() -> None:
            with uow:
                uow.accounts.add(Account("A", AccountKind.HOLDING))
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            fail_inside()
        with uow:
            assert uow.accounts.list() == []

    def test_explicit_rollback(self, uow: UnitOfWork) -> None:
        seed(uow)
        with uow:
            uow.accounts.add(Account("A", AccountKind.HOLDING))
            uow.rollback()
        with uow:
            assert uow.accounts.get("A") is None


class RegistryNodeRepositoryContract:
    @pytest.fixture
    def uow(self) -> UnitOfWork:
        raise NotImplementedError

    def test_node_round_trip_and_serial_allocation(self, uow: UnitOfWork) -> None:
        with uow:
            assert uow.registry_node.get() is None
            uow.registry_node.add(RegistryNode("CHE", "CHE01"))
            assert uow.registry_node.allocate_serials(10) == 1
            assert uow.registry_node.allocate_serials(5) == 11
            uow.registry_node.update(RegistryNode("CHE", "CHE01", True, "why"))
            uow.commit()
        with uow:
            assert uow.registry_node.lock() == RegistryNode("CHE", "CHE01", True, "why")
            assert uow.registry_node.allocate_serials(1) == 16


class AccountRepositoryContract:
    @pytest.fixture
    def uow(self) -> UnitOfWork:
        raise NotImplementedError

    def test_accounts_round_trip(self, uow: UnitOfWork) -> None:
        seed(uow)
        entity = Account("B", AccountKind.HOLDING, AccountStatus.OPEN, "ENTITY-1", "Buyer")
        with uow:
            uow.accounts.add(entity)
            uow.accounts.add(Account("A", AccountKind.NDC_USE))
            uow.accounts.update(entity.with_status(AccountStatus.SUSPENDED))
            uow.commit()
        with uow:
            assert [a.account_id for a in uow.accounts.list()] == ["A", "B"]
            assert uow.accounts.lock("B") == entity.with_status(AccountStatus.SUSPENDED)
            assert uow.accounts.get("Z") is None


class CooperativeApproachRepositoryContract:
    @pytest.fixture
    def uow(self) -> UnitOfWork:
        raise NotImplementedError

    def test_approaches_round_trip_exactly(self, uow: UnitOfWork) -> None:
        first = approach(omge_share=Decimal("0.025"), name="Swiss-Ghana")
        second = approach(cooperative_approach_id="CA0002", sectors=frozenset())
        with uow:
            uow.approaches.add(second)
            uow.approaches.add(first)
            uow.commit()
        with uow:
            assert uow.approaches.get("CA0001") == first
            assert uow.approaches.list() == [first, second]
            assert uow.approaches.get("CA0009") is None


class AuthorisationRepositoryContract:
    @pytest.fixture
    def uow(self) -> UnitOfWork:
        raise NotImplementedError

    def test_versions_history_and_counting(self, uow: UnitOfWork) -> None:
        first = authorisation(
            purposes=frozenset({Purpose.NDC, Purpose.OIMP}),
            oimp_first_transfer=FirstTransferDefinition.ISSUANCE,
            quantity_cap=1000,
            authorised_entities=frozenset({"E1", "E2"}),
        )
        second = authorisation(version=2, revoked=True)
        foreign = authorisation(authorising_party="GHA", authorised_parties=frozenset({"CHE"}))
        with uow:
            uow.authorisations.add(first)
            uow.authorisations.add(second)
            uow.authorisations.add(foreign)
            uow.authorisations.add_counted_quantity(first.authorisation_id, 30)
            uow.authorisations.add_counted_quantity(first.authorisation_id, -10)
            uow.commit()
        with uow:
            assert uow.authorisations.current("CHE", first.authorisation_id) == second
            assert uow.authorisations.get("CHE", first.authorisation_id, 1) == first
            assert uow.authorisations.history("CHE", first.authorisation_id) == [first, second]
            assert uow.authorisations.current("GHA", first.authorisation_id) == foreign
            assert uow.authorisations.counted_quantity(first.authorisation_id) == 20
            assert uow.authorisations.counted_quantity("other") == 0

    def test_a_version_is_recorded_once(self, uow: UnitOfWork) -> None:
        with uow:
            uow.authorisations.add(authorisation())
            with pytest.raises(DomainError) as error:
                uow.authorisations.add(authorisation(terms="changed"))
            assert error.value.reason is ReasonCode.AUTHORISATION_VERSION_CONFLICT


class BlockRepositoryContract:
    @pytest.fixture
    def uow(self) -> UnitOfWork:
        raise NotImplementedError

    def test_add_update_delete_and_queries(self, uow: UnitOfWork) -> None:
        seed(uow, "A", "B")
        other_origin = BlockAttributes(
            "CA0001", "GHA01", "GHA", 2024, GHG_METRIC, "AR5", "ER", "energy", "solar"
        )
        with uow:
            uow.blocks.add_many(
                [
                    block(301, 400),
                    block(1, 100),
                    block(101, 200, "B"),
                    block(1, 50, attributes=other_origin),
                    block(201, 300, status=BlockStatus.RESERVED, transfer_id="T1"),
                ]
            )
            uow.commit()
        with uow:
            held = list(uow.blocks.iter_held("A"))
            assert [(b.attributes.originating_registry_id, b.first_serial) for b in held] == [
                ("CHE01", 1),
                ("CHE01", 301),
                ("GHA01", 1),
            ]
            assert [b.first_serial for b in uow.blocks.iter_held("A", vintage=2024)] == [1]
            assert list(uow.blocks.iter_held("A", cooperative_approach_id="CA0002")) == []
            assert all(b.block_id is not None for b in held)
            overlapping = uow.blocks.present_overlapping("CHE01", 150, 250)
            assert [(b.first_serial, b.status) for b in overlapping] == [
                (101, BlockStatus.HELD),
                (201, BlockStatus.RESERVED),
            ]
            in_a = uow.blocks.in_account_overlapping("A", "CHE01", 50, 350)
            assert [b.first_serial for b in in_a] == [1, 201, 301]
            (locked,) = uow.blocks.for_transfer("T1")
            uow.blocks.update_many(
                [locked.moved(status=BlockStatus.TRANSFERRED_OUT, transfer_id="T1")]
            )
            uow.blocks.delete_many([held[2]])
            uow.commit()
        with uow:
            assert uow.blocks.present_overlapping("CHE01", 201, 300) == []
            assert uow.blocks.quantity_by_status() == {
                BlockStatus.HELD: 300,
                BlockStatus.TRANSFERRED_OUT: 100,
            }
            assert uow.blocks.quantity_in_account("A", BlockStatus.HELD) == 200
            assert [b.first_serial for b in uow.blocks.list_account("A")] == [1, 201, 301]

    def test_many_held_blocks_are_walked_in_order_across_pages(self, uow: UnitOfWork) -> None:
        seed(uow, "A")
        count = 700  # more than one page of the SQL adapter
        with uow:
            uow.blocks.add_many([block(10 * i + 1, 10 * i + 10) for i in reversed(range(count))])
            uow.commit()
        with uow:
            firsts = [b.first_serial for b in uow.blocks.iter_held("A")]
        assert firsts == [10 * i + 1 for i in range(count)]

    def test_a_present_serial_cannot_be_stored_twice(self, uow: UnitOfWork) -> None:
        seed(uow, "A")
        with uow:
            uow.blocks.add_many([block(1, 10)])
            with pytest.raises(DomainError) as error:
                uow.blocks.add_many([block(1, 5)])
            assert error.value.reason is ReasonCode.SERIAL_OVERLAP
            # A block that left the registry does not block its serials coming back.
            (stored,) = uow.blocks.list_account("A")
            uow.blocks.update_many([stored.moved(status=BlockStatus.TRANSFERRED_OUT)])
            uow.blocks.add_many([block(1, 10, transfer_role=TransferRole.DELIVERY)])
            uow.commit()
        with uow:
            assert len(uow.blocks.list_account("A")) == 2


class AdjustmentRepositoryContract:
    @pytest.fixture
    def uow(self) -> UnitOfWork:
        raise NotImplementedError

    def test_balances_per_party_year_metric(self, uow: UnitOfWork) -> None:
        def entry(party: str, year: int, quantity: int, metric: str = GHG_METRIC) -> object:
            return CorrespondingAdjustment(
                party, year, metric, quantity, AdjustmentCause.FIRST_TRANSFER, "f", "l", AT, "T1"
            )

        entries = [entry("CHE", 2025, 100), entry("CHE", 2025, -30), entry("CHE", 2026, 5)]
        entries += [entry("CHE", 2025, 7, "MWh"), entry("GHA", 2025, 1)]
        with uow:
            uow.adjustments.add_many(entries)  # type: ignore[arg-type]
            uow.commit()
        with uow:
            assert uow.adjustments.balance("CHE", 2025, GHG_METRIC) == 70
            assert uow.adjustments.balance("CHE", 2025, "MWh") == 7
            assert uow.adjustments.balance("JPN", 2025, GHG_METRIC) == 0
            assert uow.adjustments.for_party("CHE") == entries[:4]


class AuditRepositoryContract:
    @pytest.fixture
    def uow(self) -> UnitOfWork:
        raise NotImplementedError

    def test_entries_by_block_and_totals(self, uow: UnitOfWork) -> None:
        issued = audit_entry(block(1, 100), AuditAction.ISSUANCE, at=AT, to_account_id="A")
        moved = audit_entry(
            block(51, 100),
            AuditAction.TRANSFER_OUT,
            at=AT + timedelta(seconds=1),
            from_account_id="A",
            transfer_id="T1",
            counterparty_party="GHA",
        )
        elsewhere = audit_entry(block(200, 300), AuditAction.ISSUANCE, at=AT, to_account_id="A")
        with uow:
            uow.audit.append_many([issued, moved, elsewhere])
            uow.commit()
        with uow:
            assert uow.audit.for_block("CHE01", 60, 70) == [issued, moved]
            assert uow.audit.for_block("CHE01", 1, 10) == [issued]
            assert uow.audit.for_block("GHA01", 1, 1000) == []
            assert uow.audit.total_quantity(AuditAction.ISSUANCE) == 201
            assert uow.audit.total_quantity(AuditAction.ACQUISITION) == 0


class ReservationRepositoryContract:
    @pytest.fixture
    def uow(self) -> UnitOfWork:
        raise NotImplementedError

    def test_reservations_round_trip_and_filter(self, uow: UnitOfWork) -> None:
        outgoing = Reservation(
            "T1",
            TransferDirection.OUTGOING,
            "A",
            "GHA",
            "CHE",
            Purpose.NDC,
            10,
            1,
            10,
            ReservationState.PENDING,
            AT,
            AT,
            "ENTITY-1",
        )
        incoming = Reservation(
            "T2",
            TransferDirection.INCOMING,
            "A",
            "GHA",
            "GHA",
            Purpose.OIMP,
            5,
            0,
            0,
            ReservationState.PENDING,
            AT + timedelta(seconds=1),
            AT + timedelta(seconds=1),
        )
        with uow:
            uow.reservations.add(outgoing)
            uow.reservations.add(incoming)
            with pytest.raises(DomainError) as error:
                uow.reservations.add(outgoing)
            assert error.value.reason is ReasonCode.TRANSFER_ID_REUSED
            # One coordinator per transfer id at a node: the store guards it too.
            with pytest.raises(DomainError):
                uow.reservations.add(replace(incoming, coordinator_party="THA"))
            uow.commit()
        with uow:
            finalised = outgoing.finalised(AT + timedelta(minutes=1))
            uow.reservations.update(finalised)
            uow.commit()
        with uow:
            assert uow.reservations.lock("T1", "CHE") == finalised
            # Only the full key finds a reservation for change: never another
            # coordinator's transfer under the same id.
            assert uow.reservations.lock("T1", "GHA") is None
            assert uow.reservations.get("T3") is None
            assert uow.reservations.list(state=ReservationState.PENDING) == [incoming]
            assert uow.reservations.list(direction=TransferDirection.OUTGOING) == [finalised]
            assert uow.reservations.list() == [finalised, incoming]


class IdempotencyRepositoryContract:
    @pytest.fixture
    def uow(self) -> UnitOfWork:
        raise NotImplementedError

    def test_first_answer_is_kept_per_key_and_principal(self, uow: UnitOfWork) -> None:
        record = IdempotencyRecord(
            "key-1",
            "operator",
            "POST",
            "/v1/transfers",
            "sha256:abc",
            201,
            {"transfer_id": "T1", "blocks": [1, 2], "ok": True, "none": None},
            AT,
        )
        with uow:
            assert uow.idempotency.get("key-1", "operator") is None
            uow.idempotency.put(record)
            with pytest.raises(IdempotencyKeyExists):
                uow.idempotency.put(record)
            # The unit of work stays usable after a refused put (PostgreSQL aborts on error).
            uow.idempotency.put(replace(record, principal="other"))
            uow.commit()
        with uow:
            assert uow.idempotency.get("key-1", "operator") == record
            assert uow.idempotency.get("key-1", "other") is not None
            assert uow.idempotency.get("key-2", "operator") is None


PORT_CONTRACTS = (
    UnitOfWorkContract,
    RegistryNodeRepositoryContract,
    AccountRepositoryContract,
    CooperativeApproachRepositoryContract,
    AuthorisationRepositoryContract,
    BlockRepositoryContract,
    AdjustmentRepositoryContract,
    AuditRepositoryContract,
    ReservationRepositoryContract,
    IdempotencyRepositoryContract,
)
