"""Property tests: any sequence of ledger commands conserves units and never double-holds a serial.

Conservation: held + retired + cancelled + reserved + transferred-out = issued + acquired,
where issued and acquired are tracked by the test itself, not read back from the ledger.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from registry.adapters.in_memory import InMemoryUnitOfWork
from registry.application.commands import (
    CancelForOmge,
    CancelVoluntarily,
    FinaliseIncomingTransfer,
    FinaliseOutgoingTransfer,
    HoldIncomingTransfer,
    ReleaseIncomingTransfer,
    ReleaseOutgoingReservation,
    ReserveForTransfer,
    TransferInternally,
    UseTowardsNdc,
)
from registry.application.ports import UnitOfWork
from registry.domain.authorisations import Purpose
from registry.domain.blocks import PRESENT_STATUSES, BlockSpec, SerialBlock
from registry.domain.errors import DomainError
from registry.domain.selection import QuantitySelection, SerialRangeSelection
from tests.unit.application.handler_contract import sample_spec
from tests.unit.application.support import (
    OMGE_SHARE,
    PARTNER,
    PARTNER_REGISTRY_ID,
    REGISTRY_ID,
    Ledger,
    approach,
    authorisation,
    line,
    set_up_registry,
)

ACCOUNTS = ("CHE-A", "CHE-B")
account = st.sampled_from(ACCOUNTS)
quantity = st.integers(min_value=1, max_value=120)


def all_present_blocks(uow: UnitOfWork) -> list[SerialBlock]:
    with uow:
        blocks = [b for a in uow.accounts.list() for b in uow.blocks.list_account(a.account_id)]
    return [block for block in blocks if block.status in PRESENT_STATUSES]


class LedgerMachine(RuleBasedStateMachine):
    outgoing = Bundle("outgoing")
    incoming = Bundle("incoming")

    def __init__(self) -> None:
        super().__init__()
        self.ledger = Ledger(self.make_uow())
        set_up_registry(
            self.ledger,
            cooperative_approach=approach(
                participating_parties=frozenset({"CHE", PARTNER}), omge_share=OMGE_SHARE
            ),
            loa=authorisation(),
            accounts=ACCOUNTS,
        )
        self.issued = 0
        self.acquired = 0
        self.pending_incoming: dict[str, int] = {}
        self.transfer_ids = itertools.count(1)
        self.foreign_serial = 1

    def make_uow(self) -> UnitOfWork:
        return InMemoryUnitOfWork()

    def attempt(self, command: Any) -> Any:
        """Run a command; a refusal must leave the ledger exactly as it was."""
        before = self.ledger.query("ledger_totals")
        try:
            return self.ledger.run(command)
        except DomainError:
            assert self.ledger.query("ledger_totals") == before
            return None

    @rule(to=account, amount=quantity, vintage=st.sampled_from([2024, 2025]))
    def issue(self, to: str, amount: int, vintage: int) -> None:
        self.ledger.issue(to, line(amount, vintage=vintage))
        self.issued += amount

    @rule(source=account, destination=account, amount=quantity)
    def transfer_by_quantity(self, source: str, destination: str, amount: int) -> None:
        self.attempt(TransferInternally(source, destination, QuantitySelection(amount)))

    @rule(source=account, destination=account, first=st.integers(1, 400), length=st.integers(1, 60))
    def transfer_by_range(self, source: str, destination: str, first: int, length: int) -> None:
        selection = SerialRangeSelection(REGISTRY_ID, first, first + length - 1)
        self.attempt(TransferInternally(source, destination, selection))

    @rule(source=account, amount=quantity, kind=st.sampled_from(["ndc", "voluntary", "omge"]))
    def retire(self, source: str, amount: int, kind: str) -> None:
        selection = QuantitySelection(amount)
        command: Any = {
            "ndc": UseTowardsNdc(source, selection, year_of_use=2026),
            "voluntary": CancelVoluntarily(source, selection),
            "omge": CancelForOmge(source, selection),
        }[kind]
        self.attempt(command)

    @rule(target=outgoing, source=account, amount=quantity)
    def reserve(self, source: str, amount: int) -> str:
        transfer_id = f"OUT{next(self.transfer_ids)}"
        self.attempt(
            ReserveForTransfer(transfer_id, source, QuantitySelection(amount), PARTNER, Purpose.NDC)
        )
        return transfer_id

    @rule(transfer_id=consumes(outgoing), commit=st.booleans())
    def decide_outgoing(self, transfer_id: str, commit: bool) -> None:
        command = (FinaliseOutgoingTransfer if commit else ReleaseOutgoingReservation)(transfer_id)
        self.attempt(command)
        self.attempt(command)  # re-applying a decision changes nothing

    @rule(target=incoming, to=account, sizes=st.lists(st.integers(1, 50), min_size=1, max_size=3))
    def hold_incoming(self, to: str, sizes: list[int]) -> str:
        transfer_id = f"IN{next(self.transfer_ids)}"
        blocks: list[BlockSpec] = []
        for size in sizes:
            blocks.append(
                sample_spec(
                    self.foreign_serial,
                    self.foreign_serial + size - 1,
                    originating_registry_id=PARTNER_REGISTRY_ID,
                    first_transferring_party=PARTNER,
                    authorisation_id="LOA-GHA",
                )
            )
            self.foreign_serial += size
        loa = authorisation(
            authorisation_id="LOA-GHA",
            authorising_party=PARTNER,
            authorised_parties=frozenset({"CHE"}),
        )
        result = self.attempt(
            HoldIncomingTransfer(transfer_id, PARTNER, to, tuple(blocks), (loa,), Purpose.NDC)
        )
        assert result is not None
        self.pending_incoming[transfer_id] = sum(sizes)
        return transfer_id

    @rule(transfer_id=consumes(incoming), commit=st.booleans())
    def decide_incoming(self, transfer_id: str, commit: bool) -> None:
        command = (FinaliseIncomingTransfer if commit else ReleaseIncomingTransfer)(
            transfer_id, PARTNER
        )
        self.attempt(command)
        self.attempt(command)
        if commit:
            self.acquired += self.pending_incoming.pop(transfer_id)
        else:
            self.pending_incoming.pop(transfer_id)

    @invariant()
    def units_are_conserved(self) -> None:
        totals = self.ledger.query("ledger_totals")
        assert (totals.issued, totals.acquired) == (self.issued, self.acquired)
        accounted = (
            totals.held
            + totals.retired
            + totals.cancelled
            + totals.reserved
            + totals.transferred_out
        )
        assert accounted == self.issued + self.acquired
        assert totals.incoming == sum(self.pending_incoming.values())

    @invariant()
    def no_serial_is_present_twice(self) -> None:
        by_origin: defaultdict[str, list[SerialBlock]] = defaultdict(list)
        for block in all_present_blocks(self.ledger.uow):
            by_origin[block.attributes.originating_registry_id].append(block)
        for blocks in by_origin.values():
            blocks.sort(key=lambda block: block.first_serial)
            for lower, upper in itertools.pairwise(blocks):
                assert lower.last_serial < upper.first_serial, (lower, upper)


LedgerMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestLedgerMachine = LedgerMachine.TestCase
