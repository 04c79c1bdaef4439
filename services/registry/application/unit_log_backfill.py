"""Announce on the federation unit log what this ledger did before the log existed.

Issuances, uses and cancellations made before migration ``0009_unit_index`` were
never announced, so every other node's unit index has never heard of those units
and refuses each transfer of them (``UNITS_NOT_ISSUED``). ``backfill_unit_log``
reads the ledger's audit trail (append-only, the whole history), works out what
this node should have announced, subtracts what it did announce (every
announcement is an outbox row on the unit log's topic, and outbox rows are never
deleted) and announces the rest, through the outbox, in one transaction.

It is idempotent: run again, it finds everything covered and announces nothing;
that is what lets ``registry-node serve`` run it at every start. Committed
cross-border transfers need no backfill: the decision topic, kept forever, already
carries each COMMIT with its signed PREPARE.
"""

from __future__ import annotations

from dataclasses import dataclass

from registry.application.ports import UnitOfWork
from registry.domain.audit import AuditAction, AuditEntry
from registry.domain.custody import UnitAnnouncement, UnitEventKind, unannounced
from registry.domain.errors import DomainError, ReasonCode

# The audit actions that are public on the unit log, and how the log names them.
ANNOUNCED_ACTIONS: dict[AuditAction, UnitEventKind] = {
    AuditAction.ISSUANCE: UnitEventKind.ISSUED,
    AuditAction.USE_TOWARDS_NDC: UnitEventKind.USED,
    AuditAction.USE_FOR_OIMP: UnitEventKind.USED,
    AuditAction.VOLUNTARY_CANCELLATION: UnitEventKind.CANCELLED,
    AuditAction.OMGE_CANCELLATION: UnitEventKind.CANCELLED,
}


class UnitLogBackfillError(Exception):
    """The backfill cannot run, or cannot say what one audit entry announces."""


@dataclass(frozen=True, slots=True)
class BackfillResult:
    announced: tuple[UnitAnnouncement, ...]

    @property
    def quantity(self) -> int:
        return sum(a.last_serial - a.first_serial + 1 for a in self.announced)


def backfill_unit_log(uow: UnitOfWork) -> BackfillResult:
    """Announce every issuance, use and cancellation of the ledger not announced yet."""
    with uow:
        # The registry lock: an issuance or a second backfill running now waits, so
        # nothing is announced twice between reading the outbox and writing to it.
        node = uow.registry_node.lock()
        if node is None:
            raise DomainError(ReasonCode.REGISTRY_NOT_INITIALISED, "no registry in this database")
        if not uow.unit_log.can_announce:
            raise UnitLogBackfillError(
                "this node announces nothing (no federation directory or key configured)"
            )
        expected = [
            _announcement(uow, node.party, entry)
            for entry in uow.audit.with_actions(ANNOUNCED_ACTIONS)
        ]
        missing = unannounced(expected, uow.unit_log.announced())
        uow.unit_log.announce(missing)
        uow.commit()
    return BackfillResult(tuple(missing))


def _announcement(uow: UnitOfWork, party: str, entry: AuditEntry) -> UnitAnnouncement:
    approach, vintage, metric = entry.cooperative_approach_id, entry.vintage, entry.metric
    if approach is None or vintage is None or metric is None:
        # An entry from before migration 0003: the attributes are the serial's for life.
        approach, vintage, metric = _attributes_of_serial(
            uow, entry.originating_registry_id, entry.first_serial
        )
    return UnitAnnouncement(
        event=ANNOUNCED_ACTIONS[entry.action],
        party=party,
        cooperative_approach_id=approach,
        originating_registry_id=entry.originating_registry_id,
        first_serial=entry.first_serial,
        last_serial=entry.last_serial,
        vintage=vintage,
        metric=metric,
        authorisation_id=entry.authorisation_id,
        authorisation_version=entry.authorisation_version,
    )


def _attributes_of_serial(uow: UnitOfWork, registry_id: str, serial: int) -> tuple[str, int, str]:
    for other in uow.audit.for_block(registry_id, serial, serial):
        if other.cooperative_approach_id and other.vintage is not None and other.metric:
            return other.cooperative_approach_id, other.vintage, other.metric
    blocks = [
        *uow.blocks.present_overlapping(registry_id, serial, serial),
        *uow.blocks.transferred_out_overlapping(registry_id, serial, serial),
    ]
    if blocks:
        attributes = blocks[0].attributes
        return attributes.cooperative_approach_id, attributes.vintage, attributes.metric
    raise UnitLogBackfillError(
        f"no record of this ledger says which approach, vintage and metric serial "
        f"{serial} of {registry_id} has; nothing was announced"
    )
