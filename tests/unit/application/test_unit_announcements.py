"""The ledger announces issuances, cancellations and uses on the unit log, in its transaction."""

from __future__ import annotations

import pytest

from registry.adapters.in_memory import InMemoryStore, InMemoryUnitOfWork
from registry.application.commands import CancelVoluntarily, UseTowardsNdc
from registry.domain.custody import UnitAnnouncement, UnitEventKind
from registry.domain.errors import DomainError
from registry.domain.selection import QuantitySelection
from tests.unit.application.support import (
    APPROACH_ID,
    PARTY,
    REGISTRY_ID,
    Ledger,
    authorisation,
    line,
    set_up_registry,
)


def announced(store: InMemoryStore) -> list[tuple[UnitEventKind, str, str, int, int]]:
    return [
        (a.event, a.party, a.originating_registry_id, a.first_serial, a.last_serial)
        for a in store.unit_announcements
    ]


def test_issuance_use_and_cancellation_are_announced_at_party_level() -> None:
    store = InMemoryStore()
    ledger = Ledger(InMemoryUnitOfWork(store))
    set_up_registry(ledger, loa=authorisation())
    ledger.issue("CHE-A", line(100), line(20, vintage=2024))
    ledger.run(CancelVoluntarily("CHE-A", QuantitySelection(5, vintage=2025)))
    ledger.run(UseTowardsNdc("CHE-A", QuantitySelection(3, vintage=2025), year_of_use=2026))
    issued = [
        (UnitEventKind.ISSUED, PARTY, REGISTRY_ID, 1, 100),
        (UnitEventKind.ISSUED, PARTY, REGISTRY_ID, 101, 120),
    ]
    found = announced(store)
    assert found[:2] == issued
    assert [(event, party) for event, party, *_ in found[2:]] == [
        (UnitEventKind.CANCELLED, PARTY),
        (UnitEventKind.USED, PARTY),
    ]
    assert [last - first + 1 for *_, first, last in found[2:]] == [5, 3]
    first: UnitAnnouncement = store.unit_announcements[0]
    assert (first.cooperative_approach_id, first.vintage) == (APPROACH_ID, 2025)


def test_a_refused_issuance_announces_nothing() -> None:
    store = InMemoryStore()
    ledger = Ledger(InMemoryUnitOfWork(store))
    set_up_registry(ledger, loa=authorisation())
    with pytest.raises(DomainError):
        ledger.issue("CHE-Z", line(100))
    assert store.unit_announcements == []
