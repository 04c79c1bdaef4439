"""Every AEF action row carries what its action type needs, and the checker insists on it.

Besides the traded pair of the other report tests, a CHE registry with OIMP
authorisations of each first-transfer definition, a non-GHG approach with a
conversion factor, an OIMP use and both kinds of cancellation: every action type
of table 3 appears at least once.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from registry.adapters.in_memory import InMemoryUnitOfWork
from registry.application.commands import (
    CancelForOmge,
    CancelVoluntarily,
    RecordAuthorisation,
    RegisterCooperativeApproach,
    UseForOimp,
)
from registry.domain.authorisations import FirstTransferDefinition
from registry.domain.selection import QuantitySelection, SerialRangeSelection
from registry.reports import DisagreementKind, check_aef, find_disagreements
from registry.reports.aef import ActionType
from tests.unit.application.support import (
    PARTNER,
    REGISTRY_ID,
    Ledger,
    approach,
    line,
    oimp_authorisation,
    set_up_registry,
)
from tests.unit.reports.support import actions, export

Document = dict[str, Any]
Traded = tuple[Ledger, Ledger]
NON_GHG_APPROACH_ID = "CA0003"
NON_GHG_METRIC = "MWh renewable"
TCO2E_PER_MWH = Decimal("0.4")
DEFINITIONS = {
    "LOA-AUTH": FirstTransferDefinition.AUTHORISATION,
    "LOA-ISS": FirstTransferDefinition.ISSUANCE,
    "LOA-USE": FirstTransferDefinition.USE_OR_CANCELLATION,
}


# What each action row must carry, written out here rather than read from the checker,
# so that dropping a field from the checker's lists fails this test.
REQUIRED_ALWAYS = (
    "action_id",
    "action_type",
    "action_date",
    "first_identifier",
    "last_identifier",
    "quantity",
    "metric",
    "quantity_tco2e",
    "conversion_factor",
    "cooperative_approach_id",
    "vintage",
    "sector",
    "activity_type",
    "mitigation_type",
    "gwp_values",
    "first_transferring_party",
    "first_transfer",
    "authorisation_id",
    "authorisation_version",
)
REQUIRED_BY_TYPE = {
    ActionType.AUTHORISATION: ("transferring_party", "authorised_parties", "purpose"),
    ActionType.ISSUANCE: (),
    ActionType.FIRST_TRANSFER: ("transferring_party", "authorised_parties", "purpose"),
    ActionType.TRANSFER: ("transferring_party", "acquiring_party", "purpose", "transfer_id"),
    ActionType.ACQUISITION: ("transferring_party", "acquiring_party", "purpose", "transfer_id"),
    ActionType.USE_TOWARDS_NDC: ("using_party", "purpose", "year_of_use"),
    ActionType.USE_FOR_OIMP: ("using_party", "purpose", "year_of_use"),
    ActionType.CANCELLATION: ("using_party", "purpose"),
    ActionType.OMGE_CANCELLATION: ("using_party", "purpose"),
}


def oimp_registry(*, tco2e_per_unit: Decimal | None = TCO2E_PER_MWH) -> Ledger:
    ledger = Ledger(InMemoryUnitOfWork())
    set_up_registry(ledger)
    for loa_id, definition in DEFINITIONS.items():
        ledger.run(RecordAuthorisation(oimp_authorisation(definition, authorisation_id=loa_id)))
    ledger.run(
        RegisterCooperativeApproach(
            approach(
                cooperative_approach_id=NON_GHG_APPROACH_ID,
                metric=NON_GHG_METRIC,
                metric_higher_is_better=True,
                tco2e_per_unit=tco2e_per_unit,
            )
        )
    )
    ledger.run(
        RecordAuthorisation(
            oimp_authorisation(
                FirstTransferDefinition.ISSUANCE,
                authorisation_id="LOA-MWH",
                cooperative_approach_id=NON_GHG_APPROACH_ID,
            )
        )
    )
    # Serials 1-100 LOA-AUTH, 101-200 LOA-ISS, 201-300 LOA-USE, 301-400 LOA-MWH.
    ledger.issue(
        "CHE-A",
        *(line(100, authorisation_id=loa_id) for loa_id in DEFINITIONS),
        line(100, authorisation_id="LOA-MWH", cooperative_approach_id=NON_GHG_APPROACH_ID),
    )
    ledger.run(UseForOimp("CHE-A", SerialRangeSelection(REGISTRY_ID, 1, 10)))
    ledger.run(UseForOimp("CHE-A", SerialRangeSelection(REGISTRY_ID, 201, 210), year_of_use=2027))
    ledger.run(CancelVoluntarily("CHE-A", SerialRangeSelection(REGISTRY_ID, 211, 215)))
    ledger.run(CancelForOmge("CHE-A", QuantitySelection(5)))
    return ledger


@pytest.fixture
def documents(traded: Traded) -> list[Document]:
    return [export(traded[0]), export(traded[1]), export(oimp_registry())]


def _rows(document: Document, action_type: ActionType) -> list[dict[str, Any]]:
    return [row for row in actions(document) if row["action_type"] == action_type.value]


def test_every_action_type_appears_and_passes_the_checker(documents: list[Document]) -> None:
    seen = {row["action_type"] for document in documents for row in actions(document)}
    assert seen == {action_type.value for action_type in ActionType}
    for document in documents:
        assert check_aef(document) == []


def test_a_copy_missing_any_one_required_field_fails(documents: list[Document]) -> None:
    checked = 0
    for document in documents:
        for index, row in enumerate(actions(document)):
            action_type = ActionType(row["action_type"])
            required = [*REQUIRED_ALWAYS, *REQUIRED_BY_TYPE[action_type]]
            if action_type is ActionType.FIRST_TRANSFER and row["transfer_id"]:
                required += ["acquiring_party"]
            for field in required:
                corrupted = copy.deepcopy(document)
                actions(corrupted)[index][field] = None
                problems = {(p.row, p.field) for p in check_aef(corrupted)}
                assert (index, field) in problems, (action_type, field)
                checked += 1
    assert checked > 300  # every field of every row of three documents


def test_action_rows_carry_every_block_attribute(documents: list[Document]) -> None:
    (use,) = [row for row in _rows(documents[0], ActionType.USE_TOWARDS_NDC)]
    assert (use["sector"], use["activity_type"], use["mitigation_type"], use["gwp_values"]) == (
        "energy",
        "cookstoves",
        "emission reduction",
        "AR5",
    )
    assert (use["authorisation_id"], use["authorisation_version"]) == ("LOA-CHE-1", 1)
    assert (use["quantity_tco2e"], use["conversion_factor"]) == (str(use["quantity"]), "1")


def test_an_acquisition_says_whether_it_was_a_first_transfer(traded: Traded) -> None:
    by_transfer = {
        row["transfer_id"]: row["first_transfer"]
        for document in (export(traded[0]), export(traded[1]))
        for row in _rows(document, ActionType.ACQUISITION)
    }
    assert by_transfer == {"T-CHE-GHA-1": True, "T-CHE-GHA-2": True, "T-GHA-CHE-1": False}


def test_oimp_first_transfers_uses_and_cancellations_carry_their_fields(
    documents: list[Document],
) -> None:
    document = documents[2]
    (authorisation,) = _rows(document, ActionType.AUTHORISATION)
    first_transfers = _rows(document, ActionType.FIRST_TRANSFER)
    # LOA-ISS and LOA-MWH at issuance, LOA-USE at the use and at the cancellation.
    assert sorted(row["authorisation_id"] for row in first_transfers) == [
        "LOA-ISS",
        "LOA-MWH",
        "LOA-USE",
        "LOA-USE",
    ]
    for row in [authorisation, *first_transfers]:
        assert (row["transferring_party"], row["authorised_parties"]) == ("CHE", PARTNER)
        assert row["acquiring_party"] is None
        assert row["purpose"] == "OIMP"
    uses = _rows(document, ActionType.USE_FOR_OIMP)
    assert sorted(row["year_of_use"] for row in uses) == [2026, 2027]
    (voluntary,) = _rows(document, ActionType.CANCELLATION)
    (omge,) = _rows(document, ActionType.OMGE_CANCELLATION)
    assert (voluntary["purpose"], omge["purpose"]) == ("VOLUNTARY", "OMGE")


def test_a_non_ghg_row_reports_tco2e_with_its_factor(documents: list[Document]) -> None:
    (mwh,) = [
        row
        for row in _rows(documents[2], ActionType.FIRST_TRANSFER)
        if row["metric"] == NON_GHG_METRIC
    ]
    assert (mwh["quantity"], mwh["conversion_factor"]) == (100, "0.4")
    assert Decimal(mwh["quantity_tco2e"]) == 40


def test_a_non_ghg_approach_without_a_factor_fails_the_check() -> None:
    problems = check_aef(export(oimp_registry(tco2e_per_unit=None)))
    assert {p.field for p in problems} == {"conversion_factor", "quantity_tco2e"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quantity_tco2e", "99"),
        ("conversion_factor", "2"),
        ("conversion_factor", "abc"),
        ("first_transfer", "yes"),
        ("authorised_parties", "Ghana"),
    ],
)
def test_wrong_values_are_caught(documents: list[Document], field: str, value: Any) -> None:
    document = copy.deepcopy(documents[0])
    (row,) = [row for row in actions(document) if row["action_type"] == "use_towards_ndc"]
    if field == "authorised_parties":
        row = _rows(document, ActionType.FIRST_TRANSFER)[0]
    row[field] = value
    assert field in {p.field for p in check_aef(document)}


def test_a_first_transfer_row_must_say_it_is_one(documents: list[Document]) -> None:
    document = copy.deepcopy(documents[0])
    _rows(document, ActionType.FIRST_TRANSFER)[0]["first_transfer"] = False
    assert "first_transfer" in {p.field for p in check_aef(document)}


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("first_transfer", False, DisagreementKind.FIRST_TRANSFER),
        ("metric", "MWh", DisagreementKind.METRIC),
        ("vintage", 2024, DisagreementKind.VINTAGE),
    ],
)
def test_consistency_compares_first_transfer_metric_and_vintage(
    traded: Traded, field: str, value: Any, kind: DisagreementKind
) -> None:
    sender, receiver = export(traded[0]), export(traded[1])
    acquisition = next(
        row
        for row in _rows(receiver, ActionType.ACQUISITION)
        if row["transfer_id"] == "T-CHE-GHA-1"
    )
    acquisition[field] = value
    assert [d.kind for d in find_disagreements([sender, receiver])] == [kind]
