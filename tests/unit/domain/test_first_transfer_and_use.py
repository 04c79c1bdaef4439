"""The pure rules of ``domain/first_transfer.py`` and ``domain/use.py``, case by case."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from registry.domain.authorisations import FirstTransferDefinition, Purpose
from registry.domain.blocks import BlockStatus, SerialBlock
from registry.domain.errors import ReasonCode
from registry.domain.first_transfer import (
    Moment,
    cap_quantities,
    cap_refusals,
    is_first_transfer,
    omge_shares,
)
from registry.domain.use import check_holder, check_use, check_year_of_use
from tests.unit.application.support import approach, authorisation, oimp_authorisation
from tests.unit.domain.test_rules import TODAY, UNITS

OIMP_AT_ISSUANCE = oimp_authorisation(FirstTransferDefinition.ISSUANCE)
OIMP_AT_USE = oimp_authorisation(FirstTransferDefinition.USE_OR_CANCELLATION)


@pytest.mark.parametrize(
    ("units", "loa", "party", "moment", "expected"),
    [
        (UNITS, None, "CHE", Moment.CROSS_BORDER_TRANSFER, True),
        (
            replace(UNITS, first_transfer_done=True),
            None,
            "CHE",
            Moment.CROSS_BORDER_TRANSFER,
            False,
        ),
        # Only the first transferring Party first transfers; an onward transfer never does.
        (UNITS, None, "GHA", Moment.CROSS_BORDER_TRANSFER, False),
        # Units without an LoA are not ITMOs.
        (
            replace(UNITS, authorisation_id=None, authorisation_version=None),
            None,
            "CHE",
            Moment.CROSS_BORDER_TRANSFER,
            False,
        ),
        (UNITS, OIMP_AT_ISSUANCE, "CHE", Moment.ISSUANCE, True),
        (UNITS, authorisation(), "CHE", Moment.ISSUANCE, False),
        (UNITS, OIMP_AT_ISSUANCE, "CHE", Moment.USE_OR_CANCELLATION, False),
        (UNITS, OIMP_AT_USE, "CHE", Moment.USE_OR_CANCELLATION, True),
        (UNITS, OIMP_AT_USE, "CHE", Moment.ISSUANCE, False),
    ],
)
def test_is_first_transfer(
    units: Any, loa: Any, party: str, moment: Moment, expected: bool
) -> None:
    assert is_first_transfer(units, loa, party=party, moment=moment) is expected


def _block(first: int, last: int, **attributes: Any) -> SerialBlock:
    return SerialBlock("CHE-A", BlockStatus.RESERVED, first, last, replace(UNITS, **attributes))


def test_omge_share_is_per_approach_and_vintage_rounded_up() -> None:
    """40 units of 2025 and 60 of 2024 at 2 %: 0.8 -> 1 unit of 2025, 1.2 -> 2 units of 2024.

    Taken together (100 units, 2 %) they would round to 2 units of whatever vintage;
    per group, each vintage gives its own share.
    """
    ca = approach(omge_share=Decimal("0.02"))
    blocks = [_block(1, 40, vintage=2025), _block(41, 100, vintage=2024)]
    assert omge_shares(blocks, {"CA0001": ca}) == {("CA0001", 2024): 2, ("CA0001", 2025): 1}
    assert omge_shares(blocks, {"CA0001": approach()}) == {}


def test_cap_counts_first_transfers_per_authorisation() -> None:
    blocks = [_block(1, 40), _block(41, 50, authorisation_id="LOA-2")]
    assert cap_quantities(blocks) == {"LOA-CHE-1": 40, "LOA-2": 10}
    capped = authorisation(quantity_cap=50)
    assert cap_refusals(capped, counted_quantity=10, quantity=40) == []
    assert cap_refusals(capped, counted_quantity=11, quantity=40) == [
        ReasonCode.QUANTITY_CAP_EXCEEDED
    ]
    assert cap_refusals(authorisation(), counted_quantity=10**9, quantity=1) == []


def use(loa: Any = None, **overrides: Any) -> list[ReasonCode]:
    values: dict[str, Any] = {
        "purpose": Purpose.NDC,
        "using_party": "GHA",
        "holder_entity": None,
        "on": TODAY,
        "year_of_use": 2026,
        "ndc_period": None,
    }
    values.update(overrides)
    units = values.pop("units", UNITS)
    return check_use(authorisation() if loa is None else loa, units, **values)


@pytest.mark.parametrize(
    ("loa", "overrides", "expected"),
    [
        (None, {}, []),
        # Hole 1: an LoA for OIMP only does not authorise use towards an NDC.
        (
            authorisation(
                purposes=frozenset({Purpose.OIMP}),
                oimp_first_transfer=FirstTransferDefinition.ISSUANCE,
            ),
            {},
            [ReasonCode.PURPOSE_NOT_AUTHORISED],
        ),
        (None, {"purpose": Purpose.OIMP}, [ReasonCode.PURPOSE_NOT_AUTHORISED]),
        (authorisation(revoked=True, version=2), {}, [ReasonCode.AUTHORISATION_REVOKED]),
        (None, {"using_party": "JPN"}, [ReasonCode.PARTY_NOT_AUTHORISED]),
        # The authorising Party may use its own units at home.
        (None, {"using_party": "CHE"}, []),
        (
            authorisation(use_to=date(2025, 12, 31)),
            {"year_of_use": 2025},
            [ReasonCode.OUTSIDE_USE_TIMEFRAME],
        ),
        (
            authorisation(mitigation_to=date(2024, 12, 31)),
            {},
            [ReasonCode.OUTSIDE_MITIGATION_TIMEFRAME],
        ),
        # Hole 3: the entity list follows the units to their use.
        (
            authorisation(authorised_entities=frozenset({"E1"})),
            {"holder_entity": "E2"},
            [ReasonCode.ENTITY_NOT_AUTHORISED],
        ),
        (authorisation(authorised_entities=frozenset({"E1"})), {"holder_entity": "E1"}, []),
        # Hole 2: the year of use, each rule with its own code.
        (None, {"year_of_use": 2024}, [ReasonCode.YEAR_OF_USE_BEFORE_VINTAGE]),
        (
            authorisation(use_from=date(2026, 1, 1), use_to=date(2027, 12, 31)),
            {"year_of_use": 2028},
            [ReasonCode.YEAR_OF_USE_OUTSIDE_USE_TIMEFRAME],
        ),
        (
            None,
            {"year_of_use": 2031, "ndc_period": (2021, 2030)},
            [ReasonCode.YEAR_OF_USE_OUTSIDE_NDC_PERIOD],
        ),
        # The NDC period binds NDC use only.
        (
            None,
            {
                "year_of_use": 2031,
                "ndc_period": (2021, 2030),
                "using_party": "CHE",
                "purpose": Purpose.OIMP,
            },
            [ReasonCode.PURPOSE_NOT_AUTHORISED],
        ),
    ],
)
def test_check_use(loa: Any, overrides: dict[str, Any], expected: list[ReasonCode]) -> None:
    assert use(loa, **overrides) == expected


def test_own_unauthorised_units_are_usable_at_home_towards_the_ndc_only() -> None:
    domestic = replace(UNITS, authorisation_id=None, authorisation_version=None)
    assert (
        check_use(
            None,
            domestic,
            purpose=Purpose.NDC,
            using_party="CHE",
            holder_entity=None,
            on=TODAY,
            year_of_use=2026,
            ndc_period=None,
        )
        == []
    )
    assert check_use(
        None,
        domestic,
        purpose=Purpose.OIMP,
        using_party="CHE",
        holder_entity=None,
        on=TODAY,
        year_of_use=2026,
        ndc_period=None,
    ) == [ReasonCode.NO_AUTHORISATION]
    assert check_use(
        None,
        UNITS,
        purpose=Purpose.NDC,
        using_party="GHA",
        holder_entity=None,
        on=TODAY,
        year_of_use=2026,
        ndc_period=None,
    ) == [ReasonCode.NO_AUTHORISATION]


def test_year_of_use_rules_report_every_reason() -> None:
    loa = authorisation(use_from=date(2026, 1, 1), use_to=date(2027, 12, 31))
    assert check_year_of_use(
        loa, UNITS, purpose=Purpose.NDC, year_of_use=2024, ndc_period=(2025, 2030)
    ) == [
        ReasonCode.YEAR_OF_USE_BEFORE_VINTAGE,
        ReasonCode.YEAR_OF_USE_OUTSIDE_USE_TIMEFRAME,
        ReasonCode.YEAR_OF_USE_OUTSIDE_NDC_PERIOD,
    ]


def test_an_entity_list_decides_who_may_hold_the_units() -> None:
    loa = authorisation(authorised_entities=frozenset({"E1"}))
    assert check_holder(loa, UNITS, holder_entity="E2") == [ReasonCode.ENTITY_NOT_AUTHORISED]
    assert check_holder(loa, UNITS, holder_entity="E1") == []
    # The Party's own accounts hold no entity and may always hold the units.
    assert check_holder(loa, UNITS, holder_entity=None) == []
    assert check_holder(authorisation(), UNITS, holder_entity="E2") == []
