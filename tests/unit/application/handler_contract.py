"""The ledger handlers' behaviour, written once and run against every unit of work.

Subclasses provide ``ledger`` (the backend under test) and ``other_ledger`` (a
second, independent registry node for the other side of a cross-border transfer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from registry.application.commands import (
    CancelForOmge,
    CancelVoluntarily,
    ChangeAccountStatus,
    FinaliseIncomingTransfer,
    FinaliseOutgoingTransfer,
    HoldIncomingTransfer,
    InitialiseRegistry,
    OpenAccount,
    RecordAuthorisation,
    RegisterCooperativeApproach,
    ReleaseIncomingTransfer,
    ReleaseOutgoingReservation,
    ReserveForTransfer,
    RevokeAuthorisation,
    SetNdcConfiguration,
    SetTransferFreeze,
    TransferInternally,
    UseForOimp,
    UseTowardsNdc,
    ValidateIncomingTransfer,
)
from registry.application.handlers import ISSUANCE_LINES_PER_COMMAND_MAX
from registry.application.results import IncomingValidation, ReservationResult
from registry.domain.accounts import AccountKind, AccountStatus, retirement_account_id
from registry.domain.adjustments import AdjustmentCause
from registry.domain.approaches import GHG_METRIC
from registry.domain.audit import AuditAction
from registry.domain.authorisations import AuthorisationRef, FirstTransferDefinition, Purpose
from registry.domain.blocks import BlockSpec, BlockStatus
from registry.domain.errors import DomainError, ReasonCode
from registry.domain.ndc import CaMethod, NdcConfiguration, NdcLevel, NdcType
from registry.domain.selection import QuantitySelection, SerialRangeSelection
from registry.domain.transfers import ReservationState
from tests.unit.application.support import (
    APPROACH_ID,
    LOA_ID,
    OMGE_SHARE,
    OUTSIDER,
    PARTNER,
    PARTNER_REGISTRY_ID,
    PARTY,
    REGISTRY_ID,
    Ledger,
    approach,
    authorisation,
    line,
    oimp_authorisation,
    set_up_registry,
)

NDC_ACCOUNT = retirement_account_id(REGISTRY_ID, AccountKind.NDC_USE)
OMGE_ACCOUNT = retirement_account_id(REGISTRY_ID, AccountKind.OMGE_CANCELLATION)


def reasons_of(action: Callable[[], Any]) -> set[ReasonCode]:
    """The reason codes an action produced: raised, or returned as a validation."""
    try:
        result = action()
    except DomainError as error:
        return set(error.reasons)
    if isinstance(result, tuple):  # a scenario's steps: the last one is the outcome
        result = result[-1]
    if isinstance(result, IncomingValidation):
        return set(result.reasons)
    return set()


def ready(ledger: Ledger, **overrides: Any) -> Ledger:
    """CHE registry, the approach, an NDC LoA for GHA, 100 units issued to CHE-A (1-100)."""
    set_up_registry(
        ledger,
        cooperative_approach=overrides.pop("cooperative_approach", None),
        loa=overrides.pop("loa", authorisation()),
    )
    ledger.issue("CHE-A", overrides.pop("line", line(100)))
    return ledger


def reserve(ledger: Ledger, transfer_id: str = "T1", quantity: int = 10, **kw: Any) -> Any:
    values: dict[str, Any] = {
        "transfer_id": transfer_id,
        "from_account_id": "CHE-A",
        "selection": QuantitySelection(quantity),
        "acquiring_party": PARTNER,
        "purpose": Purpose.NDC,
    }
    values.update(kw)
    return ledger.run(ReserveForTransfer(**values))


def move(ledger: Ledger, quantity: int = 10, to: str = "CHE-B", **kw: Any) -> Any:
    return ledger.run(
        TransferInternally(kw.pop("source", "CHE-A"), to, QuantitySelection(quantity))
    )


def incoming(
    transfer_id: str, blocks: tuple[BlockSpec, ...], to: str = "GHA-A", **kw: Any
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "transfer_id": transfer_id,
        "transferring_party": PARTY,
        "to_account_id": to,
        "blocks": blocks,
        "authorisations": (authorisation(),),
        "purpose": Purpose.NDC,
    }
    values.update(kw)
    return values


def partner_registry(ledger: Ledger) -> Ledger:
    set_up_registry(
        ledger, party=PARTNER, registry_id=PARTNER_REGISTRY_ID, accounts=("GHA-A", "GHA-B")
    )
    return ledger


def sample_spec(first: int = 1, last: int = 10, **attributes: Any) -> BlockSpec:
    spec = BlockSpec.from_dict(
        {
            "first_serial": first,
            "last_serial": last,
            "cooperative_approach_id": APPROACH_ID,
            "originating_registry_id": REGISTRY_ID,
            "first_transferring_party": PARTY,
            "vintage": 2025,
            "metric": GHG_METRIC,
            "gwp_values": "AR5",
            "mitigation_type": "emission reduction",
            "sector": "energy",
            "activity_type": "cookstoves",
            "first_transfer_done": True,
            "authorisation_id": LOA_ID,
            "authorisation_version": 1,
        }
    )
    return replace(spec, attributes=replace(spec.attributes, **attributes))


# A single-year NDC 2021-2030, averaging; scenarios and tests vary it.
NDC = NdcConfiguration(
    ndc_type=NdcType.SINGLE_YEAR,
    period_start=2021,
    period_end=2030,
    target_year=2030,
    metrics=(GHG_METRIC,),
    method=CaMethod.AVERAGING,
)


def set_ndc(ledger: Ledger, **changes: Any) -> Any:
    return ledger.run(SetNdcConfiguration(replace(NDC, **changes)))


# One scenario per reason code; the test below insists every code has one.
REASON_SCENARIOS: dict[ReasonCode, Callable[[Ledger], Any]] = {
    ReasonCode.REGISTRY_NOT_INITIALISED: lambda lg: lg.run(OpenAccount("CHE-A")),
    ReasonCode.REGISTRY_ALREADY_INITIALISED: lambda lg: (
        ready(lg),
        lg.run(InitialiseRegistry(PARTY, REGISTRY_ID)),
    ),
    ReasonCode.REGISTRY_FROZEN: lambda lg: (ready(lg), lg.run(SetTransferFreeze(True)), move(lg)),
    ReasonCode.UNKNOWN_ACCOUNT: lambda lg: (ready(lg), move(lg, source="CHE-Z")),
    ReasonCode.ACCOUNT_EXISTS: lambda lg: (ready(lg), lg.run(OpenAccount("CHE-A"))),
    ReasonCode.ACCOUNT_CLOSED: lambda lg: (
        ready(lg),
        lg.run(ChangeAccountStatus("CHE-B", AccountStatus.CLOSED)),
        move(lg),
    ),
    ReasonCode.ACCOUNT_SUSPENDED: lambda lg: (
        ready(lg),
        lg.run(ChangeAccountStatus("CHE-A", AccountStatus.SUSPENDED)),
        move(lg),
    ),
    ReasonCode.ACCOUNT_CANNOT_HOLD_UNITS: lambda lg: (ready(lg), move(lg, to=NDC_ACCOUNT)),
    ReasonCode.ACCOUNT_NOT_EMPTY: lambda lg: (
        ready(lg),
        lg.run(ChangeAccountStatus("CHE-A", AccountStatus.CLOSED)),
    ),
    ReasonCode.SAME_ACCOUNT: lambda lg: (ready(lg), move(lg, to="CHE-A")),
    ReasonCode.INVALID_ACCOUNT_STATE_CHANGE: lambda lg: (
        ready(lg),
        lg.run(ChangeAccountStatus("CHE-B", AccountStatus.CLOSED)),
        lg.run(ChangeAccountStatus("CHE-B", AccountStatus.OPEN)),
    ),
    ReasonCode.MALFORMED_IDENTIFIER: lambda lg: (ready(lg), lg.run(OpenAccount("bad id!"))),
    ReasonCode.AUTHORISATION_MISMATCH: lambda lg: (
        ready(lg),
        reserve(
            lg,
            selection=SerialRangeSelection(REGISTRY_ID, 1, 10),
            authorisation=AuthorisationRef("LOA-OTHER"),
        ),
    ),
    ReasonCode.MALFORMED_TEXT: lambda lg: (ready(lg), lg.run(OpenAccount("CHE-T", name="a\x00b"))),
    ReasonCode.MALFORMED_BLOCK: lambda lg: (
        partner_registry(lg),
        lg.run(ValidateIncomingTransfer(**incoming("T9", (sample_spec(metric=""),)))),
    ),
    ReasonCode.NON_POSITIVE_QUANTITY: lambda lg: (ready(lg), move(lg, quantity=0)),
    ReasonCode.BATCH_TOO_LARGE: lambda lg: (
        ready(lg),
        lg.issue("CHE-A", *[line(1)] * (ISSUANCE_LINES_PER_COMMAND_MAX + 1)),
    ),
    ReasonCode.SERIAL_OVERLAP: lambda lg: (
        partner_registry(lg),
        lg.run(HoldIncomingTransfer(**incoming("T1", (sample_spec(1, 10),)))),
        lg.run(ValidateIncomingTransfer(**incoming("T2", (sample_spec(5, 15),)))),
    ),
    ReasonCode.INSUFFICIENT_UNITS: lambda lg: (ready(lg), move(lg, quantity=101)),
    ReasonCode.SERIALS_NOT_HELD: lambda lg: (
        ready(lg),
        lg.run(TransferInternally("CHE-A", "CHE-B", SerialRangeSelection(REGISTRY_ID, 90, 110))),
    ),
    ReasonCode.UNITS_LOCKED: lambda lg: (
        ready(lg),
        reserve(lg, quantity=10),
        lg.run(TransferInternally("CHE-A", "CHE-B", SerialRangeSelection(REGISTRY_ID, 85, 95))),
    ),
    ReasonCode.UNKNOWN_COOPERATIVE_APPROACH: lambda lg: (
        ready(lg),
        lg.issue("CHE-A", line(cooperative_approach_id="CA0002")),
    ),
    ReasonCode.COOPERATIVE_APPROACH_EXISTS: lambda lg: (
        ready(lg),
        lg.run(RegisterCooperativeApproach(approach())),
    ),
    ReasonCode.COOPERATIVE_APPROACH_NOT_IN_FORCE: lambda lg: (
        ready(lg, cooperative_approach=approach(in_force_until=date(2025, 12, 31))),
        reserve(lg),
    ),
    ReasonCode.PARTY_NOT_IN_COOPERATIVE_APPROACH: lambda lg: (
        ready(lg),
        lg.run(
            RegisterCooperativeApproach(
                approach(
                    cooperative_approach_id="CA0002",
                    participating_parties=frozenset({PARTNER, OUTSIDER}),
                )
            )
        ),
    ),
    ReasonCode.NOT_COVERED_BY_COOPERATIVE_APPROACH: lambda lg: (
        ready(lg),
        lg.issue("CHE-A", line(sector="forestry")),
    ),
    ReasonCode.INVALID_OMGE_SHARE: lambda lg: approach(omge_share=Decimal("1.5")),
    ReasonCode.NO_AUTHORISATION: lambda lg: (
        ready(lg, line=line(authorisation_id=None)),
        reserve(lg),
    ),
    ReasonCode.AUTHORISATION_REVOKED: lambda lg: (
        ready(lg),
        lg.run(RevokeAuthorisation(LOA_ID)),
        reserve(lg),
    ),
    ReasonCode.AUTHORISATION_VERSION_CONFLICT: lambda lg: (
        ready(lg),
        lg.run(RecordAuthorisation(authorisation())),
    ),
    ReasonCode.AUTHORISATION_WRONG_COOPERATIVE_APPROACH: lambda lg: (
        ready(lg),
        lg.run(RegisterCooperativeApproach(approach(cooperative_approach_id="CA0002"))),
        lg.issue("CHE-A", line(cooperative_approach_id="CA0002")),
    ),
    ReasonCode.AUTHORISATION_NOT_BY_THIS_PARTY: lambda lg: (
        ready(lg),
        lg.run(RecordAuthorisation(authorisation(authorisation_id="X", authorising_party=PARTNER))),
    ),
    ReasonCode.PURPOSE_NOT_AUTHORISED: lambda lg: (ready(lg), reserve(lg, purpose=Purpose.OIMP)),
    ReasonCode.PARTY_NOT_AUTHORISED: lambda lg: (
        ready(
            lg,
            cooperative_approach=approach(
                participating_parties=frozenset({PARTY, PARTNER, OUTSIDER})
            ),
        ),
        reserve(lg, acquiring_party=OUTSIDER),
    ),
    ReasonCode.ENTITY_NOT_AUTHORISED: lambda lg: (
        ready(lg, loa=authorisation(authorised_entities=frozenset({"GHA-ENTITY-1"}))),
        reserve(lg, acquiring_entity="GHA-ENTITY-2"),
    ),
    ReasonCode.OUTSIDE_MITIGATION_TIMEFRAME: lambda lg: (
        ready(
            lg,
            loa=authorisation(mitigation_from=date(2021, 1, 1), mitigation_to=date(2023, 12, 31)),
        ),
        reserve(lg),
    ),
    ReasonCode.OUTSIDE_USE_TIMEFRAME: lambda lg: (
        ready(lg, loa=authorisation(use_to=date(2025, 12, 31))),
        reserve(lg),
    ),
    ReasonCode.QUANTITY_CAP_EXCEEDED: lambda lg: (
        ready(lg, loa=authorisation(quantity_cap=50)),
        reserve(lg, quantity=60),
    ),
    ReasonCode.MISSING_FIRST_TRANSFER_DEFINITION: lambda lg: authorisation(
        purposes=frozenset({Purpose.OIMP})
    ),
    ReasonCode.INVALID_TIMEFRAME: lambda lg: (
        ready(lg),
        lg.run(UseTowardsNdc("CHE-A", QuantitySelection(1), year_of_use=1990)),
    ),
    ReasonCode.YEAR_OF_USE_BEFORE_VINTAGE: lambda lg: (
        ready(lg),
        lg.run(UseTowardsNdc("CHE-A", QuantitySelection(1), year_of_use=2024)),
    ),
    ReasonCode.YEAR_OF_USE_OUTSIDE_USE_TIMEFRAME: lambda lg: (
        ready(lg, loa=authorisation(use_to=date(2027, 12, 31))),
        lg.run(UseTowardsNdc("CHE-A", QuantitySelection(1), year_of_use=2029)),
    ),
    ReasonCode.YEAR_OF_USE_OUTSIDE_NDC_PERIOD: lambda lg: (
        ready(lg),
        set_ndc(lg),
        lg.run(UseTowardsNdc("CHE-A", QuantitySelection(1), year_of_use=2031)),
    ),
    ReasonCode.OMGE_SHARE_UNAVAILABLE: lambda lg: (
        ready(lg, cooperative_approach=approach(omge_share=OMGE_SHARE)),
        reserve(lg, quantity=100),
    ),
    ReasonCode.SAME_PARTY: lambda lg: (ready(lg), reserve(lg, acquiring_party=PARTY)),
    ReasonCode.UNKNOWN_TRANSFER: lambda lg: (ready(lg), lg.run(FinaliseOutgoingTransfer("T404"))),
    ReasonCode.TRANSFER_ID_REUSED: lambda lg: (
        ready(lg),
        lg.issue("CHE-B", line(10)),
        reserve(lg, "T1"),
        reserve(lg, "T1", from_account_id="CHE-B"),
    ),
    ReasonCode.TRANSFER_ALREADY_FINALISED: lambda lg: (
        ready(lg),
        reserve(lg),
        lg.run(FinaliseOutgoingTransfer("T1")),
        lg.run(ReleaseOutgoingReservation("T1")),
    ),
    ReasonCode.TRANSFER_ALREADY_RELEASED: lambda lg: (
        ready(lg),
        reserve(lg),
        lg.run(ReleaseOutgoingReservation("T1")),
        lg.run(FinaliseOutgoingTransfer("T1")),
    ),
    ReasonCode.TRANSFER_ID_CLAIMED: lambda lg: (
        partner_registry(lg).run(HoldIncomingTransfer(**incoming("T1", (sample_spec(1, 10),)))),
        lg.run(
            ValidateIncomingTransfer(
                **incoming("T1", (sample_spec(11, 20),), transferring_party=OUTSIDER)
            )
        ),
    ),
    ReasonCode.NDC_NOT_CONFIGURED: lambda lg: (ready(lg), lg.query("ca_summary")),
    ReasonCode.NDC_INVALID_PERIOD: lambda lg: (ready(lg), set_ndc(lg, period_start=2031)),
    ReasonCode.NDC_INVALID_TARGET_YEAR: lambda lg: (ready(lg), set_ndc(lg, target_year=2025)),
    ReasonCode.NDC_METHOD_MISMATCH: lambda lg: (ready(lg), set_ndc(lg, method=CaMethod.ANNUAL)),
    ReasonCode.NDC_NO_METRIC: lambda lg: (ready(lg), set_ndc(lg, metrics=())),
    ReasonCode.NDC_LEVEL_OUT_OF_SCOPE: lambda lg: (
        ready(lg),
        set_ndc(lg, reported_emissions=(NdcLevel(2019, GHG_METRIC, Decimal(5)),)),
    ),
    ReasonCode.NDC_TRAJECTORY_INCOMPLETE: lambda lg: (
        ready(lg),
        set_ndc(lg, method=CaMethod.TRAJECTORY),
    ),
    ReasonCode.TRANSFER_ALREADY_FINAL: lambda lg: (
        partner_registry(lg).run(HoldIncomingTransfer(**incoming("T1", (sample_spec(1, 10),)))),
        lg.run(ReleaseIncomingTransfer("T1", PARTY)),
        lg.run(ValidateIncomingTransfer(**incoming("T1", (sample_spec(1, 10),)))),
    ),
}


class LedgerHandlerContract:
    """Every rule of the ledger, through the handlers, on one backend."""

    @pytest.fixture
    def ledger(self) -> Ledger:
        raise NotImplementedError

    @pytest.fixture
    def other_ledger(self) -> Ledger:
        raise NotImplementedError

    def test_every_reason_code_has_a_scenario(self) -> None:
        assert set(REASON_SCENARIOS) == set(ReasonCode)

    @pytest.mark.parametrize("reason", sorted(REASON_SCENARIOS), ids=str)
    def test_each_rule_refuses_with_its_reason_code(
        self, ledger: Ledger, reason: ReasonCode
    ) -> None:
        assert reason in reasons_of(lambda: REASON_SCENARIOS[reason](ledger))

    def test_a_refused_command_writes_nothing(self, ledger: Ledger) -> None:
        ready(ledger)
        before = ledger.query("ledger_totals")
        with pytest.raises(DomainError):
            ledger.issue("CHE-A", line(5), line(5, sector="forestry"))
        assert ledger.query("ledger_totals") == before
        # The serial counter rolled back too: the next issuance continues at 101.
        assert ledger.issue("CHE-A", line(5)).blocks[0].first_serial == 101

    def test_issuance_allocates_consecutive_serials_never_reused(self, ledger: Ledger) -> None:
        ready(ledger)
        result = ledger.issue("CHE-A", line(50), line(25, vintage=2024))
        assert [(b.first_serial, b.last_serial) for b in result.blocks] == [(101, 150), (151, 175)]
        first = result.blocks[0]
        assert first.attributes.originating_registry_id == REGISTRY_ID
        assert first.attributes.first_transferring_party == PARTY
        assert first.attributes.authorisation_version == 1
        assert not first.attributes.first_transfer_done
        trail = ledger.query("audit_trail", REGISTRY_ID, 101, 150)
        assert [entry.action for entry in trail] == [AuditAction.ISSUANCE]
        assert trail[0].first_identifier == "CA0001-CHE01-CHE-000000101-2025"

    def test_internal_transfer_by_quantity_keeps_the_lower_range(self, ledger: Ledger) -> None:
        ready(ledger)
        result = move(ledger, quantity=30)
        assert [(b.first_serial, b.last_serial) for b in result.blocks] == [(71, 100)]
        remaining = ledger.query("account_blocks", "CHE-A")
        assert [(b.first_serial, b.last_serial) for b in remaining] == [(1, 70)]
        assert ledger.held("CHE-B") == 30
        trail = ledger.query("audit_trail", REGISTRY_ID, 71, 100)
        assert trail[-1].action is AuditAction.INTERNAL_TRANSFER
        assert (trail[-1].from_account_id, trail[-1].to_account_id) == ("CHE-A", "CHE-B")

    def test_internal_transfer_spans_blocks_and_honours_filters(self, ledger: Ledger) -> None:
        ready(ledger)
        ledger.issue("CHE-A", line(40, vintage=2024), line(40))
        # Serial order: all of 1-100 (2025), then 20 off the top of 101-140 (2024).
        move(ledger, quantity=120)
        assert ledger.held("CHE-A") == 60
        back = ledger.run(TransferInternally("CHE-B", "CHE-A", QuantitySelection(20, vintage=2024)))
        assert [(b.first_serial, b.last_serial) for b in back.blocks] == [(121, 140)]
        assert reasons_of(
            lambda: ledger.run(
                TransferInternally("CHE-B", "CHE-A", QuantitySelection(1, vintage=2024))
            )
        ) == {ReasonCode.INSUFFICIENT_UNITS}
        assert ledger.query("ledger_totals").conserved

    def test_internal_transfer_by_serial_range_carves_three_pieces(self, ledger: Ledger) -> None:
        ready(ledger)
        ledger.run(TransferInternally("CHE-A", "CHE-B", SerialRangeSelection(REGISTRY_ID, 40, 59)))
        pieces = ledger.query("account_blocks", "CHE-A")
        assert [(b.first_serial, b.last_serial) for b in pieces] == [(1, 39), (60, 100)]
        moved = ledger.query("account_blocks", "CHE-B")
        assert [(b.first_serial, b.last_serial) for b in moved] == [(40, 59)]

    def test_use_of_own_units_towards_ndc_records_no_adjustment(self, ledger: Ledger) -> None:
        ready(ledger)
        ledger.run(UseTowardsNdc("CHE-A", QuantitySelection(10), year_of_use=2026))
        assert ledger.query("adjustments_for_party", PARTY) == []
        retired = ledger.query("account_blocks", NDC_ACCOUNT)
        assert [(b.status, b.quantity) for b in retired] == [(BlockStatus.RETIRED, 10)]

    def test_oimp_use_is_the_first_transfer_when_the_loa_says_so(self, ledger: Ledger) -> None:
        loa = oimp_authorisation(FirstTransferDefinition.USE_OR_CANCELLATION)
        ready(ledger, loa=loa)
        ledger.run(UseForOimp("CHE-A", QuantitySelection(10)))
        (entry,) = ledger.query("adjustments_for_party", PARTY)
        assert (entry.year, entry.quantity, entry.cause) == (
            2025,
            10,
            AdjustmentCause.FIRST_TRANSFER,
        )
        (retired,) = ledger.query(
            "account_blocks", retirement_account_id(REGISTRY_ID, AccountKind.OIMP_USE)
        )
        assert retired.attributes.first_transfer_done

    def test_the_entity_list_follows_the_units_to_internal_transfer_and_use(
        self, ledger: Ledger
    ) -> None:
        ready(ledger)
        ledger.run(OpenAccount("CHE-E1", holder_entity_id="E1"))
        ledger.run(OpenAccount("CHE-E2", holder_entity_id="E2"))
        move(ledger, quantity=10, to="CHE-E2")  # v1 names no entity: anyone may hold
        ledger.run(
            RecordAuthorisation(authorisation(version=2, authorised_entities=frozenset({"E1"})))
        )
        before = ledger.query("ledger_totals")
        assert reasons_of(lambda: move(ledger, quantity=10, to="CHE-E2")) >= {
            ReasonCode.ENTITY_NOT_AUTHORISED
        }
        # Units already with E2 can no longer be used there: v2 is the version in force.
        assert reasons_of(
            lambda: ledger.run(UseTowardsNdc("CHE-E2", QuantitySelection(1), year_of_use=2026))
        ) >= {ReasonCode.ENTITY_NOT_AUTHORISED}
        assert ledger.query("ledger_totals") == before
        move(ledger, quantity=10, to="CHE-E1")
        ledger.run(UseTowardsNdc("CHE-E1", QuantitySelection(1), year_of_use=2026))
        # Issuance into an entity's account follows the same list.
        assert reasons_of(lambda: ledger.issue("CHE-E2", line(5))) == {
            ReasonCode.ENTITY_NOT_AUTHORISED
        }
        ledger.issue("CHE-E1", line(5))

    def test_use_towards_an_ndc_needs_an_ndc_authorisation(self, ledger: Ledger) -> None:
        ready(
            ledger,
            loa=authorisation(
                purposes=frozenset({Purpose.OIMP}),
                oimp_first_transfer=FirstTransferDefinition.ISSUANCE,
            ),
        )
        balance = ledger.query("adjustment_balance", PARTY, 2025, GHG_METRIC)
        assert reasons_of(
            lambda: ledger.run(UseTowardsNdc("CHE-A", QuantitySelection(1), year_of_use=2026))
        ) == {ReasonCode.PURPOSE_NOT_AUTHORISED, ReasonCode.INSUFFICIENT_UNITS}
        assert ledger.query("adjustment_balance", PARTY, 2025, GHG_METRIC) == balance

    def test_the_omge_share_is_reserved_from_the_transferred_vintage(self, ledger: Ledger) -> None:
        ready(
            ledger,
            cooperative_approach=approach(omge_share=OMGE_SHARE),
            line=line(100, vintage=2024),
        )
        ledger.issue("CHE-A", line(50, vintage=2025))  # serials 101-150
        result: ReservationResult = reserve(
            ledger, quantity=40, selection=QuantitySelection(40, vintage=2025)
        )
        assert [spec.attributes.vintage for spec in result.omge_blocks] == [2025]
        assert result.omge_quantity == 1

    def test_the_omge_share_is_cancelled_from_itmos_only(self, ledger: Ledger) -> None:
        ready(ledger, cooperative_approach=approach(omge_share=OMGE_SHARE), line=line(40))
        ledger.issue("CHE-A", line(10, authorisation_id=None))  # not ITMOs
        assert reasons_of(lambda: reserve(ledger, quantity=40)) >= {
            ReasonCode.OMGE_SHARE_UNAVAILABLE
        }
        assert ledger.query("ledger_totals").reserved == 0

    def test_oimp_use_needs_an_oimp_authorisation(self, ledger: Ledger) -> None:
        ready(ledger)
        assert reasons_of(lambda: ledger.run(UseForOimp("CHE-A", QuantitySelection(1)))) >= {
            ReasonCode.PURPOSE_NOT_AUTHORISED
        }

    def test_voluntary_cancellation_follows_the_first_transfer_definition(
        self, ledger: Ledger
    ) -> None:
        ready(ledger, loa=oimp_authorisation(FirstTransferDefinition.USE_OR_CANCELLATION))
        ledger.run(CancelVoluntarily("CHE-A", QuantitySelection(4)))
        assert ledger.query("adjustment_balance", PARTY, 2025, GHG_METRIC) == 4
        assert ledger.query("ledger_totals").cancelled == 4

    @pytest.mark.parametrize(
        "definition", [FirstTransferDefinition.AUTHORISATION, FirstTransferDefinition.ISSUANCE]
    )
    def test_first_transfer_at_authorisation_or_issuance_adjusts_at_issuance(
        self, ledger: Ledger, definition: FirstTransferDefinition
    ) -> None:
        ready(ledger, loa=oimp_authorisation(definition, quantity_cap=150))
        assert ledger.query("adjustment_balance", PARTY, 2025, GHG_METRIC) == 100
        assert ledger.query("account_blocks", "CHE-A")[0].attributes.first_transfer_done
        # The issuance counted against the cap: 50 more fit, 51 do not.
        ledger.issue("CHE-A", line(50))
        assert reasons_of(lambda: ledger.issue("CHE-A", line(1))) == {
            ReasonCode.QUANTITY_CAP_EXCEEDED
        }
        # Already first transferred: a cross-border transfer adds no second adjustment.
        reserve(ledger, quantity=10, purpose=Purpose.OIMP)
        ledger.run(FinaliseOutgoingTransfer("T1"))
        assert ledger.query("adjustment_balance", PARTY, 2025, GHG_METRIC) == 150

    def test_omge_cancellation_removes_units_for_good(self, ledger: Ledger) -> None:
        ready(ledger)
        ledger.run(CancelForOmge("CHE-A", QuantitySelection(5)))
        (cancelled,) = ledger.query("account_blocks", OMGE_ACCOUNT)
        assert cancelled.status is BlockStatus.CANCELLED
        assert reasons_of(
            lambda: ledger.run(TransferInternally(OMGE_ACCOUNT, "CHE-B", QuantitySelection(1)))
        ) >= {ReasonCode.ACCOUNT_CANNOT_HOLD_UNITS}

    def test_non_ghg_higher_is_better_reverses_the_sign(self, ledger: Ledger) -> None:
        ready(
            ledger,
            cooperative_approach=approach(metric="MWh renewable", metric_higher_is_better=True),
            loa=oimp_authorisation(FirstTransferDefinition.ISSUANCE),
        )
        assert ledger.query("adjustment_balance", PARTY, 2025, "MWh renewable") == -100
        assert ledger.query("adjustment_balance", PARTY, 2025, GHG_METRIC) == 0

    def test_reservation_locks_units_and_the_omge_share(self, ledger: Ledger) -> None:
        ready(ledger, cooperative_approach=approach(omge_share=OMGE_SHARE))
        result: ReservationResult = reserve(ledger, quantity=60)
        # ceil(60 x 0.02) = 2 units more, from the same holdings.
        assert (result.quantity, result.omge_quantity, result.first_transfer_quantity) == (
            60,
            2,
            60,
        )
        assert [(b.first_serial, b.last_serial) for b in result.blocks] == [(41, 100)]
        assert [(b.first_serial, b.last_serial) for b in result.omge_blocks] == [(39, 40)]
        # Sent as they stand: the acquiring registry learns this is their first transfer.
        assert not any(spec.attributes.first_transfer_done for spec in result.blocks)
        assert ledger.held("CHE-A") == 38
        assert reasons_of(lambda: move(ledger, quantity=39)) == {ReasonCode.INSUFFICIENT_UNITS}
        assert reasons_of(
            lambda: ledger.run(UseTowardsNdc("CHE-A", QuantitySelection(39), year_of_use=2026))
        ) == {ReasonCode.INSUFFICIENT_UNITS}
        totals = ledger.query("ledger_totals")
        assert (totals.reserved, totals.conserved) == (62, True)

    def test_a_repeated_reservation_returns_the_first_answer(self, ledger: Ledger) -> None:
        ready(ledger)
        first = reserve(ledger, quantity=10)
        assert reserve(ledger, quantity=99) == first
        assert ledger.query("ledger_totals").reserved == 10

    def test_finalising_debits_adjusts_and_cancels_omge_in_one_go(self, ledger: Ledger) -> None:
        ready(ledger, cooperative_approach=approach(omge_share=OMGE_SHARE))
        reserve(ledger, quantity=60)
        result = ledger.run(FinaliseOutgoingTransfer("T1"))
        assert result.state is ReservationState.FINALISED
        assert ledger.run(FinaliseOutgoingTransfer("T1")) == result  # idempotent
        totals = ledger.query("ledger_totals")
        assert (totals.transferred_out, totals.cancelled, totals.held) == (60, 2, 38)
        assert totals.conserved
        (entry,) = ledger.query("adjustments_for_party", PARTY)
        assert (entry.year, entry.quantity, entry.transfer_id) == (2025, 60, "T1")
        actions = [e.action for e in ledger.query("audit_trail", REGISTRY_ID, 41, 100)]
        assert actions[-3:] == [
            AuditAction.RESERVATION,
            AuditAction.FIRST_TRANSFER,
            AuditAction.TRANSFER_OUT,
        ]

    def test_releasing_unlocks_merges_and_uncounts_the_cap(self, ledger: Ledger) -> None:
        ready(
            ledger,
            cooperative_approach=approach(omge_share=OMGE_SHARE),
            loa=authorisation(quantity_cap=100),
        )
        reserve(ledger, quantity=90)
        assert reasons_of(lambda: reserve(ledger, "T2", quantity=11)) >= {
            ReasonCode.INSUFFICIENT_UNITS
        }
        ledger.run(ReleaseOutgoingReservation("T1"))
        ledger.run(ReleaseOutgoingReservation("T1"))  # idempotent
        blocks = ledger.query("account_blocks", "CHE-A")
        assert [(b.first_serial, b.last_serial, b.status) for b in blocks] == [
            (1, 100, BlockStatus.HELD)
        ]
        assert reserve(ledger, "T2", quantity=90).quantity == 90

    def test_the_cap_counts_pending_and_finalised_first_transfers(self, ledger: Ledger) -> None:
        ready(ledger, loa=authorisation(quantity_cap=30))
        reserve(ledger, "T1", quantity=20)
        ledger.run(FinaliseOutgoingTransfer("T1"))
        assert reasons_of(lambda: reserve(ledger, "T2", quantity=11)) == {
            ReasonCode.QUANTITY_CAP_EXCEEDED
        }
        assert reserve(ledger, "T3", quantity=10).quantity == 10

    def test_a_reservation_takes_only_units_of_the_loa_it_names(self, ledger: Ledger) -> None:
        ready(ledger)  # 1-100 under LOA-CHE-1, the oldest units
        ledger.run(RecordAuthorisation(authorisation(authorisation_id="LOA-CHE-2")))
        ledger.issue("CHE-A", line(30, authorisation_id="LOA-CHE-2"))  # 101-130
        result = reserve(ledger, quantity=20, authorisation=AuthorisationRef("LOA-CHE-2"))
        assert {block.attributes.authorisation_id for block in result.blocks} == {"LOA-CHE-2"}
        assert [(b.first_serial, b.last_serial) for b in result.blocks] == [(111, 130)]
        assert reasons_of(
            lambda: reserve(ledger, "T2", quantity=11, authorisation=AuthorisationRef("LOA-CHE-2"))
        ) >= {ReasonCode.INSUFFICIENT_UNITS}

    def test_reservation_by_serial_range(self, ledger: Ledger) -> None:
        ready(ledger)
        result = reserve(ledger, selection=SerialRangeSelection(REGISTRY_ID, 11, 20))
        assert [(b.first_serial, b.last_serial) for b in result.blocks] == [(11, 20)]

    def test_reservations_survive_a_new_unit_of_work(self, ledger: Ledger) -> None:
        ready(ledger)
        reserve(ledger, quantity=10)
        (pending,) = ledger.query("pending_transfers")
        assert (pending.transfer_id, pending.quantity) == ("T1", 10)
        assert ledger.query("get_transfer", "T1").state is ReservationState.PENDING

    def test_cross_border_transfer_end_to_end(self, ledger: Ledger, other_ledger: Ledger) -> None:
        ready(ledger, cooperative_approach=approach(omge_share=OMGE_SHARE))
        receiver = partner_registry(other_ledger)
        reserved: ReservationResult = reserve(ledger, quantity=50)
        prepare = incoming("T1", reserved.blocks)
        assert receiver.run(ValidateIncomingTransfer(**prepare)).ok
        receiver.run(HoldIncomingTransfer(**prepare))
        receiver.run(HoldIncomingTransfer(**prepare))  # a duplicate PREPARE changes nothing
        assert receiver.query("ledger_totals").incoming == 50
        assert receiver.held("GHA-A") == 0
        ledger.run(FinaliseOutgoingTransfer("T1"))
        receiver.run(FinaliseIncomingTransfer("T1", PARTY))
        receiver.run(FinaliseIncomingTransfer("T1", PARTY))
        assert receiver.held("GHA-A") == 50
        assert receiver.query("adjustments_for_party", PARTNER) == []
        totals = receiver.query("ledger_totals")
        assert (totals.acquired, totals.conserved) == (50, True)
        # Units acquired keep their attributes and identifiers.
        (held,) = receiver.query("account_blocks", "GHA-A")
        assert held.attributes.originating_registry_id == REGISTRY_ID
        assert held.first_identifier == "CA0001-CHE01-CHE-000000051-2025"
        # Used towards GHA's NDC: subtract for the year of use.
        receiver.run(UseTowardsNdc("GHA-A", QuantitySelection(20), year_of_use=2027))
        assert receiver.query("adjustment_balance", PARTNER, 2027, GHG_METRIC) == -20
        assert ledger.query("adjustment_balance", PARTY, 2025, GHG_METRIC) == 50

    def test_the_ndc_configuration_is_versioned_and_round_trips(self, ledger: Ledger) -> None:
        ready(ledger)
        first = set_ndc(ledger)
        trajectory = tuple(
            NdcLevel(year, GHG_METRIC, Decimal("41000.125")) for year in range(2021, 2031)
        )
        second = set_ndc(
            ledger,
            method=CaMethod.TRAJECTORY,
            trajectory=trajectory,
            reported_emissions=(NdcLevel(2026, GHG_METRIC, Decimal("-12.5")),),
        )
        assert (first.version, second.version, second.party) == (1, 2, PARTY)
        current = ledger.query("ndc_configuration")
        assert current.version == 2
        assert current.configuration == second.configuration
        # A refused version is not recorded and does not take a number.
        with pytest.raises(DomainError):
            set_ndc(ledger, metrics=())
        assert set_ndc(ledger).version == 3

    def test_the_ca_summary_applies_the_ndc_method_to_the_ledger(
        self, ledger: Ledger, other_ledger: Ledger
    ) -> None:
        """CHE first-transfers 50 (vintage 2025) to GHA, which uses 20 in 2027.

        CHE, averaging over 2021-2030: 2025 indicative 50 / 5 = 10; applied in
        2030: 50 / 10 = 5. GHA, multi-year annual 2021-2030: 2027 applies -20,
        and -20 is the cumulative at the end of the period.
        """
        ready(ledger)
        receiver = partner_registry(other_ledger)
        reserved = reserve(ledger, quantity=50)
        receiver.run(HoldIncomingTransfer(**incoming("T1", reserved.blocks)))
        ledger.run(FinaliseOutgoingTransfer("T1"))
        receiver.run(FinaliseIncomingTransfer("T1", PARTY))
        receiver.run(UseTowardsNdc("GHA-A", QuantitySelection(20), year_of_use=2027))
        set_ndc(ledger)
        set_ndc(receiver, ndc_type=NdcType.MULTI_YEAR, target_year=None, method=CaMethod.ANNUAL)
        (sender,) = ledger.query("ca_summary").metrics
        by_year = {row.year: row for row in sender.years}
        assert (by_year[2025].applied_adjustment, by_year[2025].indicative) == (10, True)
        assert (by_year[2030].applied_adjustment, by_year[2030].indicative) == (5, False)
        (acquirer,) = receiver.query("ca_summary").metrics
        by_year = {row.year: row for row in acquirer.years}
        assert (by_year[2027].used, by_year[2027].applied_adjustment) == (-20, -20)
        assert acquirer.period_total == -20

    def test_an_onward_transfer_needs_the_loa_to_authorise_the_next_party(
        self, ledger: Ledger, other_ledger: Ledger
    ) -> None:
        # The ledger under test is the acquirer here: its stored LoA snapshot decides.
        origin = ready(other_ledger)
        receiver = partner_registry(ledger)
        reserved = reserve(origin, quantity=30)
        receiver.run(HoldIncomingTransfer(**incoming("T1", reserved.blocks)))
        origin.run(FinaliseOutgoingTransfer("T1"))
        receiver.run(FinaliseIncomingTransfer("T1", PARTY))
        refused = reasons_of(
            lambda: receiver.run(
                ReserveForTransfer("T2", "GHA-A", QuantitySelection(10), PARTY, Purpose.NDC)
            )
        )
        assert ReasonCode.PARTY_NOT_AUTHORISED in refused

    def test_onward_transfer_without_adjustment_or_omge(
        self, ledger: Ledger, other_ledger: Ledger
    ) -> None:
        loa = authorisation(authorised_parties=frozenset({PARTNER, PARTY}))
        origin = ready(other_ledger, cooperative_approach=approach(omge_share=OMGE_SHARE), loa=loa)
        receiver = partner_registry(ledger)
        reserved = reserve(origin, quantity=30)
        receiver.run(HoldIncomingTransfer(**incoming("T1", reserved.blocks, authorisations=(loa,))))
        origin.run(FinaliseOutgoingTransfer("T1"))
        receiver.run(FinaliseIncomingTransfer("T1", PARTY))
        onward = receiver.run(
            ReserveForTransfer("T2", "GHA-A", QuantitySelection(10), PARTY, Purpose.NDC)
        )
        assert (onward.omge_quantity, onward.first_transfer_quantity) == (0, 0)
        receiver.run(FinaliseOutgoingTransfer("T2"))
        assert receiver.query("adjustments_for_party", PARTNER) == []
        totals = receiver.query("ledger_totals")
        assert (totals.transferred_out, totals.held, totals.conserved) == (10, 20, True)

    def test_releasing_an_incoming_transfer_drops_the_pending_credit(self, ledger: Ledger) -> None:
        receiver = partner_registry(ledger)
        receiver.run(HoldIncomingTransfer(**incoming("T1", (sample_spec(1, 10),))))
        receiver.run(ReleaseIncomingTransfer("T1", PARTY))
        receiver.run(ReleaseIncomingTransfer("T1", PARTY))
        assert receiver.query("ledger_totals").incoming == 0
        assert receiver.run(ValidateIncomingTransfer(**incoming("T1", ()))).reasons == (
            ReasonCode.TRANSFER_ALREADY_FINAL,
        )
        # The serials are free again for a new transfer.
        assert receiver.run(ValidateIncomingTransfer(**incoming("T2", (sample_spec(1, 10),)))).ok

    def test_another_coordinators_transfer_under_the_same_id_never_reaches_the_hold(
        self, ledger: Ledger
    ) -> None:
        # A third member reuses the id of PARTY's transfer in flight to this node.
        receiver = partner_registry(ledger)
        receiver.run(HoldIncomingTransfer(**incoming("T1", (sample_spec(1, 10),))))
        intruder = incoming("T1", (sample_spec(11, 20),), transferring_party=OUTSIDER)
        assert receiver.run(ValidateIncomingTransfer(**intruder)).reasons == (
            ReasonCode.TRANSFER_ID_CLAIMED,
        )
        assert reasons_of(lambda: receiver.run(HoldIncomingTransfer(**intruder))) == {
            ReasonCode.TRANSFER_ID_CLAIMED
        }
        # Its decisions find no reservation of its own, and leave PARTY's alone.
        release = ReleaseIncomingTransfer("T1", OUTSIDER)
        finalise = FinaliseIncomingTransfer("T1", OUTSIDER)
        assert reasons_of(lambda: receiver.run(release)) == {ReasonCode.UNKNOWN_TRANSFER}
        assert reasons_of(lambda: receiver.run(finalise)) == {ReasonCode.UNKNOWN_TRANSFER}
        assert receiver.query("ledger_totals").incoming == 10
        receiver.run(FinaliseIncomingTransfer("T1", PARTY))
        assert receiver.held("GHA-A") == 10
        # A finished transfer's id stays taken, whoever asks.
        assert receiver.run(ValidateIncomingTransfer(**intruder)).reasons == (
            ReasonCode.TRANSFER_ALREADY_FINAL,
        )

    @pytest.mark.parametrize(
        ("change", "expected"),
        [
            ({"to": "GHA-Z"}, ReasonCode.UNKNOWN_ACCOUNT),
            ({"transferring_party": OUTSIDER}, ReasonCode.PARTY_NOT_IN_COOPERATIVE_APPROACH),
            ({"authorisations": ()}, ReasonCode.NO_AUTHORISATION),
            ({"purpose": Purpose.OIMP}, ReasonCode.PURPOSE_NOT_AUTHORISED),
            (
                {"blocks": (sample_spec(sector="forestry"),)},
                ReasonCode.NOT_COVERED_BY_COOPERATIVE_APPROACH,
            ),
            ({"blocks": (sample_spec(1, 10), sample_spec(10, 12))}, ReasonCode.SERIAL_OVERLAP),
            ({"blocks": (sample_spec(10, 1),)}, ReasonCode.NON_POSITIVE_QUANTITY),
            (
                {"blocks": (sample_spec(originating_registry_id="CHE1"),)},
                ReasonCode.MALFORMED_IDENTIFIER,
            ),
            ({"blocks": ()}, ReasonCode.NON_POSITIVE_QUANTITY),
            ({"transfer_id": "bad id"}, ReasonCode.MALFORMED_IDENTIFIER),
        ],
    )
    def test_incoming_validation_reasons(
        self, ledger: Ledger, change: dict[str, Any], expected: ReasonCode
    ) -> None:
        receiver = partner_registry(ledger)
        values = incoming("T1", (sample_spec(),))
        values.update({("to_account_id" if k == "to" else k): v for k, v in change.items()})
        assert expected in receiver.run(ValidateIncomingTransfer(**values)).reasons
        with pytest.raises(DomainError) as refused:
            receiver.run(HoldIncomingTransfer(**values))
        assert expected in refused.value.reasons
        assert receiver.query("ledger_totals").incoming == 0

    def test_incoming_is_refused_while_frozen_and_overlapping_holdings(
        self, ledger: Ledger
    ) -> None:
        receiver = partner_registry(ledger)
        receiver.run(HoldIncomingTransfer(**incoming("T1", (sample_spec(1, 10),))))
        receiver.run(FinaliseIncomingTransfer("T1", PARTY))
        receiver.run(SetTransferFreeze(True, "audit"))
        reasons = receiver.run(ValidateIncomingTransfer(**incoming("T2", (sample_spec(10, 20),))))
        assert set(reasons.reasons) == {ReasonCode.REGISTRY_FROZEN, ReasonCode.SERIAL_OVERLAP}
        assert receiver.query("get_registry_node").freeze_reason == "audit"

    def test_authorisation_versions_and_revocation(self, ledger: Ledger) -> None:
        ready(ledger)
        ledger.run(RecordAuthorisation(authorisation(version=2, quantity_cap=5)))
        assert reasons_of(lambda: reserve(ledger, quantity=6)) == {ReasonCode.QUANTITY_CAP_EXCEEDED}
        revoked = ledger.run(RevokeAuthorisation(LOA_ID))
        assert (revoked.version, revoked.revoked) == (3, True)
        history = ledger.query("authorisation_history", LOA_ID)
        assert [a.version for a in history] == [1, 2, 3]
        assert reasons_of(lambda: ledger.run(RevokeAuthorisation(LOA_ID))) == {
            ReasonCode.AUTHORISATION_REVOKED
        }

    def test_suspended_account_can_reopen(self, ledger: Ledger) -> None:
        ready(ledger)
        ledger.run(ChangeAccountStatus("CHE-B", AccountStatus.SUSPENDED))
        ledger.run(ChangeAccountStatus("CHE-B", AccountStatus.OPEN))
        move(ledger, 5)
        ledger.run(SetTransferFreeze(True))
        ledger.run(SetTransferFreeze(False))
        move(ledger, 5)
        assert ledger.held("CHE-B") == 10
        ledger.clock.advance(timedelta(days=1))
        assert ledger.query("get_account", "CHE-B").status is AccountStatus.OPEN
