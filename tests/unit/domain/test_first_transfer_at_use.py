"""First transfer at use or cancellation (2/CMA.3 annex para 2(b)), as ``domain/first_transfer``
decides it: where it happens, and whether a notice of it may be recorded by the authorising
Party."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from registry.domain.authorisations import FirstTransferDefinition, Purpose
from registry.domain.blocks import BlockSpec, BlockStatus, SerialBlock
from registry.domain.errors import ReasonCode
from registry.domain.first_transfer import (
    FirstTransferAt,
    FirstTransferNotice,
    Moment,
    RetirementAction,
    check_first_transfer_notice,
    first_transfer_at,
    is_first_departure,
    is_first_transfer,
    onward_transfer_refusals,
)
from tests.unit.application.support import authorisation, oimp_authorisation
from tests.unit.domain.test_rules import UNITS

AT_USE = oimp_authorisation(FirstTransferDefinition.USE_OR_CANCELLATION)
AT_ISSUANCE = oimp_authorisation(FirstTransferDefinition.ISSUANCE)
NDC_ONLY = authorisation()
NOT_DONE = replace(UNITS, first_transfer_done=False)


def at_border(units: Any, loa: Any, purpose: Purpose, by: str = "CHE") -> bool:
    return is_first_transfer(
        units, loa, party=by, moment=Moment.CROSS_BORDER_TRANSFER, purpose=purpose
    )


def at_retirement(units: Any, loa: Any, purpose: Purpose | None, by: str) -> FirstTransferAt:
    """A use for OIMP (``Purpose.OIMP``) or a voluntary cancellation (None) by ``by``."""
    return first_transfer_at(
        units, loa, party=by, moment=Moment.USE_OR_CANCELLATION, purpose=purpose
    )


# The retirements that can be a first transfer: use for OIMP, and cancellation.
RETIREMENTS = [Purpose.OIMP, None]


class TestAtTheBorder:
    def test_an_oimp_transfer_under_use_or_cancellation_is_not_the_first_transfer(self) -> None:
        assert not at_border(NOT_DONE, AT_USE, Purpose.OIMP)

    def test_an_ndc_transfer_under_the_same_loa_is_the_first_transfer(self) -> None:
        # Para 2(a): for NDC use the first international transfer is the first transfer.
        assert at_border(NOT_DONE, AT_USE, Purpose.NDC)

    @pytest.mark.parametrize("loa", [NDC_ONLY, AT_ISSUANCE, None])
    def test_other_loas_keep_the_first_transfer_at_the_border(self, loa: Any) -> None:
        purpose = Purpose.NDC if loa is NDC_ONLY else Purpose.OIMP
        assert at_border(NOT_DONE, loa, purpose)

    def test_units_already_first_transferred_are_not_again(self) -> None:
        done = replace(UNITS, first_transfer_done=True)
        assert not at_border(done, NDC_ONLY, Purpose.NDC)
        assert not at_border(done, AT_USE, Purpose.NDC)

    def test_only_the_first_transferring_party_makes_a_first_transfer(self) -> None:
        # GHA passing CHE's units on cannot record CHE's adjustment.
        assert not at_border(NOT_DONE, AT_USE, Purpose.NDC, by="GHA")
        assert not at_border(NOT_DONE, AT_USE, Purpose.OIMP, by="GHA")

    def test_a_deferred_first_transfer_still_departs_against_the_cap(self) -> None:
        # CHE parts with its units now: cap and OMGE share go with this departure.
        assert is_first_departure(NOT_DONE, party="CHE")
        assert not is_first_departure(NOT_DONE, party="GHA")
        assert not is_first_departure(replace(UNITS, first_transfer_done=True), party="CHE")


class TestOnwardTransfer:
    def test_pending_units_move_on_from_another_party_only_for_oimp(self) -> None:
        assert onward_transfer_refusals(
            NOT_DONE, AT_USE, transferring_party="GHA", purpose=Purpose.NDC
        ) == [ReasonCode.FIRST_TRANSFER_PENDING_AT_USE]
        assert (
            onward_transfer_refusals(
                NOT_DONE, AT_USE, transferring_party="GHA", purpose=Purpose.OIMP
            )
            == []
        )

    @pytest.mark.parametrize(
        ("units", "loa", "by"),
        [
            (NOT_DONE, AT_USE, "CHE"),  # the authorising Party's own first transfer
            (replace(UNITS, first_transfer_done=True), AT_USE, "GHA"),
            (NOT_DONE, AT_ISSUANCE, "GHA"),
        ],
    )
    def test_anything_else_moves_on_for_an_ndc(self, units: Any, loa: Any, by: str) -> None:
        assert (
            onward_transfer_refusals(units, loa, transferring_party=by, purpose=Purpose.NDC) == []
        )


class TestAtRetirement:
    @pytest.mark.parametrize("purpose", RETIREMENTS)
    def test_use_or_cancellation_at_home_is_recorded_here(self, purpose: Purpose | None) -> None:
        assert at_retirement(NOT_DONE, AT_USE, purpose, by="CHE") is FirstTransferAt.HERE
        assert is_first_transfer(
            NOT_DONE, AT_USE, party="CHE", moment=Moment.USE_OR_CANCELLATION, purpose=purpose
        )

    @pytest.mark.parametrize("purpose", RETIREMENTS)
    def test_use_or_cancellation_abroad_is_noticed(self, purpose: Purpose | None) -> None:
        assert at_retirement(NOT_DONE, AT_USE, purpose, by="GHA") is FirstTransferAt.BY_NOTICE
        # Not a first transfer GHA records: CHE does, on the notice.
        assert not is_first_transfer(
            NOT_DONE, AT_USE, party="GHA", moment=Moment.USE_OR_CANCELLATION, purpose=purpose
        )

    @pytest.mark.parametrize(
        ("units", "loa", "purpose"),
        [
            (NOT_DONE, AT_USE, Purpose.NDC),  # a use towards an NDC
            (replace(UNITS, first_transfer_done=True), AT_USE, Purpose.OIMP),
            (NOT_DONE, AT_ISSUANCE, Purpose.OIMP),
            (NOT_DONE, NDC_ONLY, None),
            (NOT_DONE, None, None),
            (replace(NOT_DONE, authorisation_id=None, authorisation_version=None), AT_USE, None),
        ],
    )
    def test_anything_else_is_no_first_transfer(
        self, units: Any, loa: Any, purpose: Purpose | None
    ) -> None:
        assert at_retirement(units, loa, purpose, by="GHA") is FirstTransferAt.NONE


def sent(first: int, last: int, **attributes: Any) -> SerialBlock:
    return SerialBlock(
        "CHE-A",
        BlockStatus.TRANSFERRED_OUT,
        first,
        last,
        replace(NOT_DONE, **attributes),
        block_id=first,
    )


def notice(*ranges: tuple[int, int], **overrides: Any) -> FirstTransferNotice:
    values: dict[str, Any] = {
        "notice_id": "n-1",
        "authorising_party": "CHE",
        "noticing_party": "GHA",
        "authorisation_id": "LOA-CHE-1",
        "authorisation_version": 1,
        "action": RetirementAction.USE_FOR_OIMP,
        "year": 2026,
        "occurred_at": datetime(2026, 3, 2, tzinfo=UTC),
        "blocks": tuple(BlockSpec(first, last, NOT_DONE) for first, last in ranges),
    }
    values.update(overrides)
    return FirstTransferNotice(**values)


def check(
    the_notice: FirstTransferNotice,
    out: tuple[SerialBlock, ...] = (),
    loa: Any = AT_USE,
    **kw: Any,
) -> list[ReasonCode]:
    return check_first_transfer_notice(the_notice, loa, out, own_party="CHE", **kw)


class TestNoticeCheck:
    def test_units_sent_abroad_under_the_loa_may_be_recorded(self) -> None:
        assert check(notice((11, 20)), (sent(1, 40),)) == []

    def test_a_range_covered_by_two_departures_may_be_recorded(self) -> None:
        assert check(notice((11, 30)), (sent(1, 20), sent(21, 40))) == []

    def test_units_never_sent_are_refused(self) -> None:
        assert check(notice((35, 45)), (sent(1, 40),)) == [
            ReasonCode.FIRST_TRANSFER_NOTICE_UNITS_NOT_SENT
        ]
        assert check(notice((1, 10)), ()) == [ReasonCode.FIRST_TRANSFER_NOTICE_UNITS_NOT_SENT]

    def test_units_still_in_an_outgoing_transfer_are_early_not_refused(self) -> None:
        reserved = replace(sent(1, 40), status=BlockStatus.RESERVED)
        assert check(notice((1, 10)), (), in_flight=(reserved,)) == [
            ReasonCode.FIRST_TRANSFER_NOTICE_EARLY
        ]

    def test_any_unit_already_noticed_refuses_the_notice(self) -> None:
        out = (sent(1, 10, first_transfer_done=True), sent(11, 40))
        assert check(notice((5, 15)), out) == [ReasonCode.FIRST_TRANSFER_ALREADY_NOTICED]

    def test_a_notice_from_this_party_or_for_another_is_misdirected(self) -> None:
        assert ReasonCode.FIRST_TRANSFER_NOTICE_MISDIRECTED in check(
            notice((1, 10), noticing_party="CHE"), (sent(1, 40),)
        )
        assert ReasonCode.FIRST_TRANSFER_NOTICE_MISDIRECTED in check(
            notice((1, 10), authorising_party="JPN"), (sent(1, 40),)
        )

    def test_units_of_another_loa_or_party_are_not_own(self) -> None:
        other_loa = replace(NOT_DONE, authorisation_id="LOA-CHE-2")
        foreign = replace(NOT_DONE, first_transferring_party="GHA")
        for units in (other_loa, foreign):
            the_notice = replace(notice(), blocks=(BlockSpec(1, 10, units),))
            assert check(the_notice, (sent(1, 40),)) == [
                ReasonCode.FIRST_TRANSFER_NOTICE_NOT_OWN_UNITS
            ]

    def test_an_loa_that_puts_the_first_transfer_elsewhere_is_refused(self) -> None:
        assert check(notice((1, 10)), (sent(1, 40),), loa=AT_ISSUANCE) == [
            ReasonCode.FIRST_TRANSFER_NOT_AT_USE
        ]
        assert check(notice((1, 10)), (sent(1, 40),), loa=None) == [ReasonCode.NO_AUTHORISATION]

    def test_a_serial_named_twice_is_refused(self) -> None:
        assert check(notice((1, 10), (5, 15)), (sent(1, 40),)) == [ReasonCode.SERIAL_OVERLAP]

    def test_an_empty_notice_is_refused(self) -> None:
        assert check(notice(), ()) == [ReasonCode.BATCH_TOO_LARGE]
