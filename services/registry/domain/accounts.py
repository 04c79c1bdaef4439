"""Accounts of a registry: holding accounts and the four retirement accounts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from a6wire.identifiers import is_label
from registry.domain.errors import DomainError, ReasonCode

ACCOUNT_ID_PATTERN = r"^[A-Z0-9][A-Z0-9-]{0,63}$"
_ACCOUNT_ID = re.compile(ACCOUNT_ID_PATTERN)


class AccountKind(StrEnum):
    HOLDING = "HOLDING"
    NDC_USE = "NDC_USE"
    OIMP_USE = "OIMP_USE"
    VOLUNTARY_CANCELLATION = "VOLUNTARY_CANCELLATION"
    OMGE_CANCELLATION = "OMGE_CANCELLATION"


RETIREMENT_KINDS = frozenset(
    {
        AccountKind.NDC_USE,
        AccountKind.OIMP_USE,
        AccountKind.VOLUNTARY_CANCELLATION,
        AccountKind.OMGE_CANCELLATION,
    }
)


class AccountStatus(StrEnum):
    OPEN = "OPEN"
    SUSPENDED = "SUSPENDED"
    CLOSED = "CLOSED"


def retirement_account_id(registry_id: str, kind: AccountKind) -> str:
    """The well-known id of a registry's retirement account of one kind, e.g. ``THA01-NDC_USE``."""
    if kind not in RETIREMENT_KINDS:
        raise ValueError(f"{kind} is not a retirement account kind")
    return f"{registry_id}-{kind.value}".replace("_", "-")


@dataclass(frozen=True, slots=True)
class Account:
    """An account; ``holder_entity_id`` is None for the Party's own accounts."""

    account_id: str
    kind: AccountKind
    status: AccountStatus = AccountStatus.OPEN
    holder_entity_id: str | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if not _ACCOUNT_ID.fullmatch(self.account_id):
            raise DomainError(
                ReasonCode.MALFORMED_IDENTIFIER,
                f"{self.account_id!r} is not an account id ({ACCOUNT_ID_PATTERN})",
            )

    @property
    def may_hold_transferable_units(self) -> bool:
        # Units in a retirement account are out of circulation for good.
        return self.kind is AccountKind.HOLDING

    def with_status(self, status: AccountStatus) -> Account:
        if self.status is AccountStatus.CLOSED:
            raise DomainError(
                ReasonCode.INVALID_ACCOUNT_STATE_CHANGE,
                f"account {self.account_id} is closed and cannot change state",
            )
        return Account(self.account_id, self.kind, status, self.holder_entity_id, self.name)


def check_account_text(account: Account) -> list[ReasonCode]:
    """A new account's name and holder id are labels: no control characters (NUL, ESC)."""
    texts = (account.name, account.holder_entity_id or "")
    return [] if all(is_label(text) for text in texts) else [ReasonCode.MALFORMED_TEXT]


def check_usable_holding_account(account: Account | None) -> list[ReasonCode]:
    """Check 6 for one side: the account exists, is open and may hold ITMOs."""
    if account is None:
        return [ReasonCode.UNKNOWN_ACCOUNT]
    reasons: list[ReasonCode] = []
    if account.status is AccountStatus.CLOSED:
        reasons.append(ReasonCode.ACCOUNT_CLOSED)
    elif account.status is AccountStatus.SUSPENDED:
        reasons.append(ReasonCode.ACCOUNT_SUSPENDED)
    if not account.may_hold_transferable_units:
        reasons.append(ReasonCode.ACCOUNT_CANNOT_HOLD_UNITS)
    return reasons
