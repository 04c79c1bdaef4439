"""A fake ledger driven by the same effects the real handler performs.

Units are tracked one serial at a time (scenarios are small), which makes the
invariant checks obvious rather than clever. The ledger is part of a node's
durable store: it survives a crash, and every effect of one transition is
applied together with the state change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from a6wire.identifiers import registry_party
from a6wire.messages import Prepare
from registry.protocol.arbiter import TransferKey
from registry.protocol.effects import ApplyAbort, ApplyCommit, HoldIncoming, HoldOutgoing, Role

UNITS_NOT_AVAILABLE = "UNITS_NOT_AVAILABLE"
UNITS_ALREADY_HELD = "UNITS_ALREADY_HELD"
NO_AUTHORISATION_IN_FORCE = "NO_AUTHORISATION_IN_FORCE"


@dataclass
class Unit:
    account_id: str
    originating_party: str
    first_transfer_done: bool
    locked_by: TransferKey | None = None


@dataclass
class PendingCredit:
    account_id: str
    units: dict[int, Unit]


@dataclass
class FakeLedger:
    party: str
    holdings: dict[int, Unit] = field(default_factory=dict)
    pending_debits: dict[TransferKey, tuple[int, ...]] = field(default_factory=dict)
    pending_credits: dict[TransferKey, PendingCredit] = field(default_factory=dict)
    # (key, "COMMIT" | "ABORT", role) in the order applied: the checker's evidence.
    journal: list[tuple[TransferKey, str, Role]] = field(default_factory=list)
    # Corresponding adjustments recorded with first-transfer debits: (key, serial).
    adjustments: list[tuple[TransferKey, int]] = field(default_factory=list)
    # Applications that found no matching hold: never expected from a correct core.
    anomalies: list[str] = field(default_factory=list)

    def available(self) -> list[int]:
        return sorted(serial for serial, unit in self.holdings.items() if unit.locked_by is None)

    def refusals_for_outgoing(self, prepare: Prepare) -> tuple[str, ...]:
        for block in prepare.blocks:
            for serial in range(block.first_serial, block.last_serial + 1):
                unit = self.holdings.get(serial)
                if (
                    unit is None
                    or unit.locked_by is not None
                    or unit.account_id != prepare.from_account_id
                ):
                    return (UNITS_NOT_AVAILABLE,)
        return ()

    def refusals_for_incoming(self, prepare: Prepare, refuse: bool) -> tuple[str, ...]:
        refusals: list[str] = [NO_AUTHORISATION_IN_FORCE] if refuse else []
        if registry_party(prepare.to_registry_id) == self.party:
            pending = {s for credit in self.pending_credits.values() for s in credit.units}
            for block in prepare.blocks:
                serials = range(block.first_serial, block.last_serial + 1)
                if any(s in self.holdings or s in pending for s in serials):
                    refusals.append(UNITS_ALREADY_HELD)
                    break
        return tuple(refusals)

    def hold_outgoing(self, effect: HoldOutgoing) -> None:
        prepare = effect.prepare
        key = TransferKey(prepare.transfer_id, prepare.coordinator_party)
        serials = tuple(
            serial
            for block in prepare.blocks
            for serial in range(block.first_serial, block.last_serial + 1)
        )
        for serial in serials:
            self.holdings[serial].locked_by = key
        self.pending_debits[key] = serials

    def hold_incoming(self, effect: HoldIncoming) -> None:
        prepare = effect.prepare
        if registry_party(prepare.to_registry_id) != self.party:
            return  # a voting participant that receives nothing holds nothing
        key = TransferKey(prepare.transfer_id, prepare.coordinator_party)
        units = {
            serial: Unit(prepare.to_account_id, block.first_transferring_party, True)
            for block in prepare.blocks
            for serial in range(block.first_serial, block.last_serial + 1)
        }
        self.pending_credits[key] = PendingCredit(prepare.to_account_id, units)

    def apply_commit(self, effect: ApplyCommit) -> None:
        key = TransferKey(effect.transfer_id, effect.coordinator_party)
        self.journal.append((key, "COMMIT", effect.role))
        if effect.role is Role.COORDINATOR:
            serials = self.pending_debits.pop(key, None)
            if serials is None:
                self.anomalies.append(f"commit without pending debit {key}")
                return
            for serial in serials:
                unit = self.holdings.pop(serial)
                # The first transfer's corresponding adjustment, in the same
                # transaction as the debit (invariant 3).
                if not unit.first_transfer_done:
                    self.adjustments.append((key, serial))
            return
        credit = self.pending_credits.pop(key, None)
        if credit is not None:
            self.holdings.update(credit.units)

    def apply_abort(self, effect: ApplyAbort) -> None:
        key = TransferKey(effect.transfer_id, effect.coordinator_party)
        self.journal.append((key, "ABORT", effect.role))
        if effect.role is Role.COORDINATOR:
            serials = self.pending_debits.pop(key, None)
            if serials is None:
                self.anomalies.append(f"abort without pending debit {key}")
                return
            for serial in serials:
                self.holdings[serial].locked_by = None
            return
        self.pending_credits.pop(key, None)
