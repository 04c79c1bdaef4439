"""Test support for the ledger: a settable clock, reference data, and a thin driver."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from registry.application import handlers
from registry.application.commands import (
    InitialiseRegistry,
    IssuanceLine,
    IssueUnits,
    OpenAccount,
    RecordAuthorisation,
    RegisterCooperativeApproach,
)
from registry.application.ports import UnitOfWork
from registry.application.results import MovementResult
from registry.domain.approaches import CooperativeApproach
from registry.domain.authorisations import Authorisation, FirstTransferDefinition, Purpose

PARTY = "CHE"
REGISTRY_ID = "CHE01"
PARTNER = "GHA"
PARTNER_REGISTRY_ID = "GHA01"
OUTSIDER = "JPN"
APPROACH_ID = "CA0001"
LOA_ID = "LOA-CHE-1"
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    current: datetime = START

    def now(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> None:
        self.current += delta


def approach(**overrides: Any) -> CooperativeApproach:
    values: dict[str, Any] = {
        "cooperative_approach_id": APPROACH_ID,
        "participating_parties": frozenset({PARTY, PARTNER}),
        "vintage_from": 2021,
        "vintage_to": 2030,
        "in_force_from": date(2021, 1, 1),
        "sectors": frozenset({"energy"}),
        "activity_types": frozenset({"cookstoves", "solar"}),
    }
    values.update(overrides)
    return CooperativeApproach(**values)


def authorisation(**overrides: Any) -> Authorisation:
    values: dict[str, Any] = {
        "authorisation_id": LOA_ID,
        "version": 1,
        "authorising_party": PARTY,
        "authorised_on": date(2025, 1, 1),
        "cooperative_approach_id": APPROACH_ID,
        "authorised_parties": frozenset({PARTNER}),
        "purposes": frozenset({Purpose.NDC}),
    }
    values.update(overrides)
    return Authorisation(**values)


def oimp_authorisation(definition: FirstTransferDefinition, **overrides: Any) -> Authorisation:
    return authorisation(
        purposes=frozenset({Purpose.NDC, Purpose.OIMP}),
        oimp_first_transfer=definition,
        **overrides,
    )


def line(quantity: int = 100, **overrides: Any) -> IssuanceLine:
    values: dict[str, Any] = {
        "quantity": quantity,
        "cooperative_approach_id": APPROACH_ID,
        "vintage": 2025,
        "sector": "energy",
        "activity_type": "cookstoves",
        "mitigation_type": "emission reduction",
        "gwp_values": "AR5",
        "authorisation_id": LOA_ID,
    }
    values.update(overrides)
    return IssuanceLine(**values)


@dataclass
class Ledger:
    """Runs handlers against one unit of work with one clock."""

    uow: UnitOfWork
    clock: FakeClock = field(default_factory=FakeClock)

    def run(self, command: Any) -> Any:
        return handlers.handle(self.uow, self.clock, command)

    def query(self, name: str, *args: Any) -> Any:
        return getattr(handlers, name)(self.uow, self.clock, *args)

    def issue(self, account_id: str, *lines: IssuanceLine) -> MovementResult:
        result: MovementResult = self.run(IssueUnits(account_id, tuple(lines)))
        return result

    def held(self, account_id: str) -> int:
        balance: dict[Any, int] = self.query("account_balance", account_id)
        return sum(q for status, q in balance.items() if status.value == "HELD")


def set_up_registry(
    ledger: Ledger,
    *,
    party: str = PARTY,
    registry_id: str = REGISTRY_ID,
    cooperative_approach: CooperativeApproach | None = None,
    loa: Authorisation | None = None,
    accounts: tuple[str, ...] = ("CHE-A", "CHE-B"),
) -> None:
    """A registry with one approach, one LoA (if given) and two holding accounts."""
    ledger.run(InitialiseRegistry(party, registry_id))
    ledger.run(RegisterCooperativeApproach(cooperative_approach or approach()))
    if loa is not None:
        ledger.run(RecordAuthorisation(loa))
    for account_id in accounts:
        ledger.run(OpenAccount(account_id))


OMGE_SHARE = Decimal("0.02")
