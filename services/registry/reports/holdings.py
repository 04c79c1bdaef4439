"""Holdings at a moment, by account kind and unit class, replayed from the audit trail.

The block table only knows the present; the AEF reports holdings at the end of
the reported year. Every movement into or out of an account is audited, so
replaying the trail up to that moment gives the holdings then.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from a6wire.identifiers import IdentifierError, parse_unique_identifier
from registry.domain.accounts import AccountKind
from registry.domain.audit import AuditAction, AuditEntry


class HoldingKey(NamedTuple):
    account_kind: AccountKind
    cooperative_approach_id: str
    vintage: int
    metric: str


# Actions that take units out of ``from_account_id`` and those that put them into
# ``to_account_id``. Reservations keep units in their account (they are still
# held until a transfer commits) and pending incoming credit is not held yet.
_DEBITS = frozenset(
    {
        AuditAction.INTERNAL_TRANSFER,
        AuditAction.USE_TOWARDS_NDC,
        AuditAction.USE_FOR_OIMP,
        AuditAction.VOLUNTARY_CANCELLATION,
        AuditAction.OMGE_CANCELLATION,
        AuditAction.TRANSFER_OUT,
    }
)
_CREDITS = frozenset(
    {
        AuditAction.ISSUANCE,
        AuditAction.ACQUISITION,
        AuditAction.INTERNAL_TRANSFER,
        AuditAction.USE_TOWARDS_NDC,
        AuditAction.USE_FOR_OIMP,
        AuditAction.VOLUNTARY_CANCELLATION,
        AuditAction.OMGE_CANCELLATION,
    }
)
UNKNOWN_METRIC = ""


class ReplayError(ValueError):
    """The trail names an account the registry does not know: the report would be wrong."""


def holdings_at(
    entries: Iterable[AuditEntry], account_kinds: Mapping[str, AccountKind]
) -> dict[HoldingKey, int]:
    """Units per (account kind, approach, vintage, metric) after ``entries``; zeros left out."""
    totals: defaultdict[HoldingKey, int] = defaultdict(int)
    for entry in entries:
        if entry.action in _DEBITS and entry.from_account_id is not None:
            totals[_key(entry, entry.from_account_id, account_kinds)] -= entry.quantity
        if entry.action in _CREDITS and entry.to_account_id is not None:
            totals[_key(entry, entry.to_account_id, account_kinds)] += entry.quantity
    return {key: quantity for key, quantity in sorted(totals.items()) if quantity != 0}


def _key(
    entry: AuditEntry, account_id: str, account_kinds: Mapping[str, AccountKind]
) -> HoldingKey:
    kind = account_kinds.get(account_id)
    if kind is None:
        raise ReplayError(f"the audit trail names an unknown account {account_id}")
    if entry.cooperative_approach_id is not None and entry.vintage is not None:
        return HoldingKey(
            kind, entry.cooperative_approach_id, entry.vintage, entry.metric or UNKNOWN_METRIC
        )
    # Entries written before migration 0003: the identifier still names the class.
    try:
        unit = parse_unique_identifier(entry.first_identifier)
    except IdentifierError as error:
        raise ReplayError(f"unreadable identifier {entry.first_identifier!r}") from error
    return HoldingKey(kind, unit.cooperative_approach_id, unit.vintage, UNKNOWN_METRIC)
