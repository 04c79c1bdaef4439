"""Two ledgers that trade: CHE sends GHA units across the border, driven through the
handlers directly (reserve on CHE, validate and hold on GHA, finalise on both), plus
issuance, an internal transfer, a use and a cancellation; and their AEF documents."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from registry.application.commands import (
    CancelVoluntarily,
    FinaliseIncomingTransfer,
    FinaliseOutgoingTransfer,
    HoldIncomingTransfer,
    ReserveForTransfer,
    TransferInternally,
    UseTowardsNdc,
    ValidateIncomingTransfer,
)
from registry.application.results import ReportSource, ReservationResult
from registry.domain.authorisations import Purpose
from registry.domain.selection import QuantitySelection
from registry.reports.aef import build_aef
from tests.unit.application.support import (
    PARTNER,
    PARTNER_REGISTRY_ID,
    PARTY,
    START,
    Ledger,
    authorisation,
    line,
    set_up_registry,
)

REPORTED_YEAR = START.year
ISSUED = 1000
SENT_FIRST = 450
SENT_BACK = 30
SENT_SECOND = 120
USED_BY_SENDER = 50
CANCELLED_BY_SENDER = 25
USED_BY_RECEIVER = 40
STEP = timedelta(minutes=5)


# Both Parties may acquire, so units can also travel back (an onward "transfer").
LOA = authorisation(authorised_parties=frozenset({PARTY, PARTNER}))


def cross_border(
    sender: Ledger,
    receiver: Ledger,
    transfer_id: str,
    quantity: int,
    *,
    route: tuple[str, str] = (PARTY, PARTNER),
    accounts: tuple[str, str] = ("CHE-A", "GHA-A"),
) -> None:
    """One committed transfer, as the protocol will drive it once it lands."""
    reserved: ReservationResult = sender.run(
        ReserveForTransfer(
            transfer_id, accounts[0], QuantitySelection(quantity), route[1], Purpose.NDC
        )
    )
    prepare: dict[str, Any] = {
        "transfer_id": transfer_id,
        "transferring_party": route[0],
        "to_account_id": accounts[1],
        "blocks": reserved.blocks,
        "authorisations": (LOA,),
        "purpose": Purpose.NDC,
    }
    assert receiver.run(ValidateIncomingTransfer(**prepare)).ok
    receiver.run(HoldIncomingTransfer(**prepare))
    sender.clock.advance(STEP)
    receiver.clock.current = sender.clock.current
    sender.run(FinaliseOutgoingTransfer(transfer_id))
    receiver.run(FinaliseIncomingTransfer(transfer_id, route[0]))


def trade(sender: Ledger, receiver: Ledger) -> None:
    """The seeded federation of two: every kind of action the AEF reports."""
    set_up_registry(sender, loa=LOA)
    set_up_registry(receiver, party=PARTNER, registry_id=PARTNER_REGISTRY_ID, accounts=("GHA-A",))
    sender.issue("CHE-A", line(ISSUED // 2), line(ISSUED // 2, activity_type="solar"))
    sender.clock.advance(STEP)
    sender.run(TransferInternally("CHE-A", "CHE-B", QuantitySelection(100)))
    sender.run(UseTowardsNdc("CHE-B", QuantitySelection(USED_BY_SENDER), year_of_use=2026))
    sender.run(CancelVoluntarily("CHE-B", QuantitySelection(CANCELLED_BY_SENDER)))
    # The first transfer takes units from both issued blocks: two rows, one transfer.
    cross_border(sender, receiver, "T-CHE-GHA-1", SENT_FIRST)
    cross_border(sender, receiver, "T-CHE-GHA-2", SENT_SECOND)
    receiver.clock.advance(STEP)
    receiver.run(UseTowardsNdc("GHA-A", QuantitySelection(USED_BY_RECEIVER), year_of_use=2026))
    # GHA sends some back: a transfer that is not a first transfer.
    cross_border(
        receiver,
        sender,
        "T-GHA-CHE-1",
        SENT_BACK,
        route=(PARTNER, PARTY),
        accounts=("GHA-A", "CHE-B"),
    )


def export(ledger: Ledger, year: int = REPORTED_YEAR) -> dict[str, Any]:
    source: ReportSource = ledger.query("report_source", year)
    return build_aef(
        node=source.node,
        reported_year=source.reported_year,
        generated_at=source.read_at,
        accounts=source.accounts,
        approaches=source.approaches,
        authorisations=source.authorisations,
        audit=source.audit,
    ).to_document()


def actions(document: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = document["tables"]["actions"]
    return rows
