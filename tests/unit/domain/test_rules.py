"""Authorisation, cooperative-approach, account and adjustment rules, each reason by itself."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from registry.domain.accounts import (
    Account,
    AccountKind,
    AccountStatus,
    check_usable_holding_account,
)
from registry.domain.adjustments import first_transfer_adjustment, use_adjustment
from registry.domain.approaches import check_cooperative_approach
from registry.domain.authorisations import Purpose, check_authorisation, check_new_version
from registry.domain.blocks import BlockStatus, SerialBlock
from registry.domain.errors import DomainError, ReasonCode
from registry.domain.first_transfer import omge_share_quantity
from registry.domain.registry_node import RegistryNode
from tests.unit.application.support import approach, authorisation
from tests.unit.domain.test_blocks import ATTRIBUTES

UNITS = replace(
    ATTRIBUTES,
    originating_registry_id="CHE01",
    first_transferring_party="CHE",
    authorisation_id="LOA-CHE-1",
)
TODAY = date(2026, 3, 1)


def check(loa: Any = None, **overrides: Any) -> list[ReasonCode]:
    values: dict[str, Any] = {
        "acquiring_party": "GHA",
        "acquiring_entity": None,
        "purpose": Purpose.NDC,
        "on": TODAY,
        "quantity": 10,
        "counted_quantity": 0,
    }
    values.update(overrides)
    units = values.pop("units", UNITS)
    return check_authorisation(authorisation() if loa is None else loa, units, **values)


@pytest.mark.parametrize(
    ("loa", "overrides", "expected"),
    [
        (None, {}, []),
        (authorisation(authorisation_id="OTHER"), {}, [ReasonCode.NO_AUTHORISATION]),
        (
            None,
            {"units": replace(UNITS, authorisation_id=None, authorisation_version=None)},
            [ReasonCode.NO_AUTHORISATION],
        ),
        (authorisation(revoked=True, version=2), {}, [ReasonCode.AUTHORISATION_REVOKED]),
        (
            authorisation(cooperative_approach_id="CA0002"),
            {},
            [ReasonCode.AUTHORISATION_WRONG_COOPERATIVE_APPROACH],
        ),
        (None, {"purpose": Purpose.OIMP}, [ReasonCode.PURPOSE_NOT_AUTHORISED]),
        (None, {"acquiring_party": "JPN"}, [ReasonCode.PARTY_NOT_AUTHORISED]),
        (
            authorisation(authorised_entities=frozenset({"E1"})),
            {"acquiring_entity": "E2"},
            [ReasonCode.ENTITY_NOT_AUTHORISED],
        ),
        (authorisation(authorised_entities=frozenset({"E1"})), {"acquiring_entity": "E1"}, []),
        (
            authorisation(mitigation_from=date(2026, 1, 1)),
            {},
            [ReasonCode.OUTSIDE_MITIGATION_TIMEFRAME],
        ),
        (
            authorisation(mitigation_to=date(2024, 12, 31)),
            {},
            [ReasonCode.OUTSIDE_MITIGATION_TIMEFRAME],
        ),
        (authorisation(use_from=date(2026, 6, 1)), {}, [ReasonCode.OUTSIDE_USE_TIMEFRAME]),
        (authorisation(use_to=date(2026, 2, 28)), {}, [ReasonCode.OUTSIDE_USE_TIMEFRAME]),
        (authorisation(quantity_cap=100), {"counted_quantity": 90}, []),
        (
            authorisation(quantity_cap=100),
            {"counted_quantity": 91},
            [ReasonCode.QUANTITY_CAP_EXCEEDED],
        ),
        (
            authorisation(
                purposes=frozenset({Purpose.OIMP}),
                oimp_first_transfer="issuance",
                authorised_parties=frozenset(),
            ),
            {},
            [ReasonCode.PURPOSE_NOT_AUTHORISED, ReasonCode.PARTY_NOT_AUTHORISED],
        ),
    ],
)
def test_check_authorisation(
    loa: Any, overrides: dict[str, Any], expected: list[ReasonCode]
) -> None:
    assert check(loa, **overrides) == expected


def test_no_snapshot_means_no_authorisation() -> None:
    assert check_authorisation(
        None,
        UNITS,
        acquiring_party="GHA",
        acquiring_entity=None,
        purpose=Purpose.NDC,
        on=TODAY,
        quantity=1,
        counted_quantity=0,
    ) == [ReasonCode.NO_AUTHORISATION]


@pytest.mark.parametrize(
    ("current", "new", "expected"),
    [
        (None, authorisation(), []),
        (None, authorisation(version=2), [ReasonCode.AUTHORISATION_VERSION_CONFLICT]),
        (authorisation(), authorisation(version=2), []),
        (authorisation(), authorisation(version=3), [ReasonCode.AUTHORISATION_VERSION_CONFLICT]),
        (
            authorisation(revoked=True),
            authorisation(version=2),
            [ReasonCode.AUTHORISATION_VERSION_CONFLICT],
        ),
        (
            authorisation(),
            authorisation(version=2, cooperative_approach_id="CA0002"),
            [ReasonCode.AUTHORISATION_WRONG_COOPERATIVE_APPROACH],
        ),
        (
            None,
            authorisation(authorising_party="GHA"),
            [ReasonCode.AUTHORISATION_NOT_BY_THIS_PARTY],
        ),
    ],
)
def test_check_new_version(current: Any, new: Any, expected: list[ReasonCode]) -> None:
    assert check_new_version(current, new, own_party="CHE") == expected


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"purposes": frozenset()}, ReasonCode.PURPOSE_NOT_AUTHORISED),
        ({"purposes": frozenset({Purpose.OIMP})}, ReasonCode.MISSING_FIRST_TRANSFER_DEFINITION),
        ({"quantity_cap": 0}, ReasonCode.NON_POSITIVE_QUANTITY),
        ({"use_from": date(2026, 2, 1), "use_to": date(2026, 1, 1)}, ReasonCode.INVALID_TIMEFRAME),
        ({"authorising_party": "che"}, ReasonCode.MALFORMED_IDENTIFIER),
        ({"version": 0}, ReasonCode.MALFORMED_IDENTIFIER),
    ],
)
def test_an_invalid_authorisation_cannot_be_built(
    change: dict[str, Any], reason: ReasonCode
) -> None:
    with pytest.raises(DomainError) as error:
        authorisation(**change)
    assert error.value.reason is reason


@pytest.mark.parametrize(
    ("overrides", "parties", "on", "expected"),
    [
        ({}, ("CHE", "GHA"), TODAY, []),
        ({}, ("CHE", "JPN"), TODAY, [ReasonCode.PARTY_NOT_IN_COOPERATIVE_APPROACH]),
        (
            {"in_force_from": date(2027, 1, 1)},
            ("CHE", "GHA"),
            TODAY,
            [ReasonCode.COOPERATIVE_APPROACH_NOT_IN_FORCE],
        ),
        (
            {"in_force_until": date(2026, 2, 28)},
            ("CHE", "GHA"),
            TODAY,
            [ReasonCode.COOPERATIVE_APPROACH_NOT_IN_FORCE],
        ),
        (
            {"vintage_to": 2024},
            ("CHE", "GHA"),
            TODAY,
            [ReasonCode.NOT_COVERED_BY_COOPERATIVE_APPROACH],
        ),
        (
            {"sectors": frozenset({"forestry"})},
            ("CHE", "GHA"),
            TODAY,
            [ReasonCode.NOT_COVERED_BY_COOPERATIVE_APPROACH],
        ),
        (
            {"activity_types": frozenset({"solar"})},
            ("CHE", "GHA"),
            TODAY,
            [ReasonCode.NOT_COVERED_BY_COOPERATIVE_APPROACH],
        ),
        (
            {"metric": "MWh"},
            ("CHE", "GHA"),
            TODAY,
            [ReasonCode.NOT_COVERED_BY_COOPERATIVE_APPROACH],
        ),
        ({"sectors": frozenset(), "activity_types": frozenset()}, ("CHE", "GHA"), TODAY, []),
    ],
)
def test_check_cooperative_approach(
    overrides: dict[str, Any], parties: tuple[str, str], on: date, expected: list[ReasonCode]
) -> None:
    assert (
        check_cooperative_approach(
            approach(**overrides),
            parties=parties,
            vintage=2025,
            sector="energy",
            activity_type="cookstoves",
            metric="tCO2e",
            on=on,
        )
        == expected
    )


def test_an_unknown_approach_covers_nothing() -> None:
    assert check_cooperative_approach(
        None,
        parties=("CHE", "GHA"),
        vintage=2025,
        sector="energy",
        activity_type="cookstoves",
        metric="tCO2e",
        on=TODAY,
    ) == [ReasonCode.NOT_COVERED_BY_COOPERATIVE_APPROACH]


@pytest.mark.parametrize(
    ("share", "quantity", "omge"),
    [
        (None, 100, 0),
        ("0.02", 100, 2),
        ("0.02", 101, 3),
        ("0.02", 1, 1),
        ("0.02", 0, 0),
        ("0.1", 30, 3),
    ],
)
def test_omge_quantity_is_the_exact_ceiling(share: str | None, quantity: int, omge: int) -> None:
    assert (
        omge_share_quantity(
            approach(omge_share=None if share is None else Decimal(share)), quantity
        )
        == omge
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"omge_share": Decimal(0)}, ReasonCode.INVALID_OMGE_SHARE),
        ({"omge_share": Decimal(1)}, ReasonCode.INVALID_OMGE_SHARE),
        (
            {"participating_parties": frozenset({"CHE"})},
            ReasonCode.PARTY_NOT_IN_COOPERATIVE_APPROACH,
        ),
        ({"vintage_from": 2031}, ReasonCode.INVALID_TIMEFRAME),
        ({"cooperative_approach_id": "CA01"}, ReasonCode.MALFORMED_IDENTIFIER),
        ({"metric": ""}, ReasonCode.MALFORMED_BLOCK),
    ],
)
def test_an_invalid_approach_cannot_be_built(change: dict[str, Any], reason: ReasonCode) -> None:
    with pytest.raises(DomainError) as error:
        approach(**change)
    assert error.value.reason is reason


@pytest.mark.parametrize(
    ("account", "expected"),
    [
        (None, [ReasonCode.UNKNOWN_ACCOUNT]),
        (Account("A", AccountKind.HOLDING), []),
        (Account("A", AccountKind.HOLDING, AccountStatus.CLOSED), [ReasonCode.ACCOUNT_CLOSED]),
        (
            Account("A", AccountKind.HOLDING, AccountStatus.SUSPENDED),
            [ReasonCode.ACCOUNT_SUSPENDED],
        ),
        (Account("A", AccountKind.OMGE_CANCELLATION), [ReasonCode.ACCOUNT_CANNOT_HOLD_UNITS]),
    ],
)
def test_usable_holding_account(account: Account | None, expected: list[ReasonCode]) -> None:
    assert check_usable_holding_account(account) == expected


def test_a_closed_account_stays_closed() -> None:
    with pytest.raises(DomainError) as error:
        Account("A", AccountKind.HOLDING, AccountStatus.CLOSED).with_status(AccountStatus.OPEN)
    assert error.value.reason is ReasonCode.INVALID_ACCOUNT_STATE_CHANGE


@pytest.mark.parametrize(
    ("party", "registry_id"), [("CHE", "GHA01"), ("ch", "CH01"), ("CHE", "CHE1")]
)
def test_registry_identity_is_checked(party: str, registry_id: str) -> None:
    with pytest.raises(DomainError) as error:
        RegistryNode(party, registry_id)
    assert error.value.reason is ReasonCode.MALFORMED_IDENTIFIER


def test_freeze_refuses_transfers() -> None:
    assert RegistryNode("CHE", "CHE01", transfers_frozen=True).check_transfers_allowed() == [
        ReasonCode.REGISTRY_FROZEN
    ]
    assert RegistryNode("CHE", "CHE01").check_transfers_allowed() == []


@pytest.mark.parametrize(("higher_is_better", "sign"), [(False, 1), (True, -1)])
def test_adjustments_add_for_vintage_and_subtract_for_year_of_use(
    higher_is_better: bool, sign: int
) -> None:
    units = SerialBlock("A", BlockStatus.HELD, 1, 40, UNITS)
    ca = approach(metric_higher_is_better=higher_is_better)
    at = datetime(2026, 3, 1, tzinfo=UTC)
    added = first_transfer_adjustment("CHE", units, ca, at=at, transfer_id="T1")
    used = use_adjustment("GHA", units, ca, year_of_use=2028, at=at)
    assert (added.party, added.year, added.quantity, added.transfer_id) == (
        "CHE",
        2025,
        40 * sign,
        "T1",
    )
    assert (used.party, used.year, used.quantity) == ("GHA", 2028, -40 * sign)
    assert added.first_identifier == "CA0001-CHE01-CHE-000000001-2025"


def test_domain_error_collects_distinct_reasons() -> None:
    error = DomainError(
        ReasonCode.INSUFFICIENT_UNITS,
        "short",
        reasons=[ReasonCode.NO_AUTHORISATION, ReasonCode.INSUFFICIENT_UNITS],
    )
    assert error.reasons == (ReasonCode.INSUFFICIENT_UNITS, ReasonCode.NO_AUTHORISATION)
    assert (error.reason, error.message) == (ReasonCode.INSUFFICIENT_UNITS, "short")
