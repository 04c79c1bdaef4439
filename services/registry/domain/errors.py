"""Typed domain errors carrying stable, machine-readable reason codes.

The codes are part of the public contract: the API maps them to responses and
a receiving node puts them in a "no" vote, so a code is never renamed.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class ReasonCode(StrEnum):
    # Registry and accounts
    REGISTRY_NOT_INITIALISED = "REGISTRY_NOT_INITIALISED"
    REGISTRY_ALREADY_INITIALISED = "REGISTRY_ALREADY_INITIALISED"
    REGISTRY_FROZEN = "REGISTRY_FROZEN"
    UNKNOWN_ACCOUNT = "UNKNOWN_ACCOUNT"
    ACCOUNT_EXISTS = "ACCOUNT_EXISTS"
    ACCOUNT_CLOSED = "ACCOUNT_CLOSED"
    ACCOUNT_SUSPENDED = "ACCOUNT_SUSPENDED"
    ACCOUNT_CANNOT_HOLD_UNITS = "ACCOUNT_CANNOT_HOLD_UNITS"
    ACCOUNT_NOT_EMPTY = "ACCOUNT_NOT_EMPTY"
    SAME_ACCOUNT = "SAME_ACCOUNT"
    INVALID_ACCOUNT_STATE_CHANGE = "INVALID_ACCOUNT_STATE_CHANGE"
    # Identifiers and blocks
    MALFORMED_IDENTIFIER = "MALFORMED_IDENTIFIER"
    MALFORMED_BLOCK = "MALFORMED_BLOCK"
    # A name, label or text with control characters (NUL, ESC, ...).
    MALFORMED_TEXT = "MALFORMED_TEXT"
    NON_POSITIVE_QUANTITY = "NON_POSITIVE_QUANTITY"
    BATCH_TOO_LARGE = "BATCH_TOO_LARGE"
    SERIAL_OVERLAP = "SERIAL_OVERLAP"
    # Holdings
    INSUFFICIENT_UNITS = "INSUFFICIENT_UNITS"
    SERIALS_NOT_HELD = "SERIALS_NOT_HELD"
    UNITS_LOCKED = "UNITS_LOCKED"
    # Cooperative approaches
    UNKNOWN_COOPERATIVE_APPROACH = "UNKNOWN_COOPERATIVE_APPROACH"
    COOPERATIVE_APPROACH_EXISTS = "COOPERATIVE_APPROACH_EXISTS"
    COOPERATIVE_APPROACH_NOT_IN_FORCE = "COOPERATIVE_APPROACH_NOT_IN_FORCE"
    PARTY_NOT_IN_COOPERATIVE_APPROACH = "PARTY_NOT_IN_COOPERATIVE_APPROACH"
    NOT_COVERED_BY_COOPERATIVE_APPROACH = "NOT_COVERED_BY_COOPERATIVE_APPROACH"
    INVALID_OMGE_SHARE = "INVALID_OMGE_SHARE"
    # Authorisations
    NO_AUTHORISATION = "NO_AUTHORISATION"
    AUTHORISATION_REVOKED = "AUTHORISATION_REVOKED"
    AUTHORISATION_VERSION_CONFLICT = "AUTHORISATION_VERSION_CONFLICT"
    AUTHORISATION_WRONG_COOPERATIVE_APPROACH = "AUTHORISATION_WRONG_COOPERATIVE_APPROACH"
    AUTHORISATION_NOT_BY_THIS_PARTY = "AUTHORISATION_NOT_BY_THIS_PARTY"
    PURPOSE_NOT_AUTHORISED = "PURPOSE_NOT_AUTHORISED"
    PARTY_NOT_AUTHORISED = "PARTY_NOT_AUTHORISED"
    ENTITY_NOT_AUTHORISED = "ENTITY_NOT_AUTHORISED"
    OUTSIDE_MITIGATION_TIMEFRAME = "OUTSIDE_MITIGATION_TIMEFRAME"
    OUTSIDE_USE_TIMEFRAME = "OUTSIDE_USE_TIMEFRAME"
    QUANTITY_CAP_EXCEEDED = "QUANTITY_CAP_EXCEEDED"
    MISSING_FIRST_TRANSFER_DEFINITION = "MISSING_FIRST_TRANSFER_DEFINITION"
    # The units picked or named are not (all) under the LoA the transfer names.
    AUTHORISATION_MISMATCH = "AUTHORISATION_MISMATCH"
    INVALID_TIMEFRAME = "INVALID_TIMEFRAME"
    # Use (towards an NDC or for OIMP): the year of use is checked on its own
    YEAR_OF_USE_BEFORE_VINTAGE = "YEAR_OF_USE_BEFORE_VINTAGE"
    YEAR_OF_USE_OUTSIDE_USE_TIMEFRAME = "YEAR_OF_USE_OUTSIDE_USE_TIMEFRAME"
    YEAR_OF_USE_OUTSIDE_NDC_PERIOD = "YEAR_OF_USE_OUTSIDE_NDC_PERIOD"
    # OMGE: the share must come from the transferred units' own approach and vintage
    OMGE_SHARE_UNAVAILABLE = "OMGE_SHARE_UNAVAILABLE"
    # Cross-border transfers
    SAME_PARTY = "SAME_PARTY"
    UNKNOWN_TRANSFER = "UNKNOWN_TRANSFER"
    TRANSFER_ID_REUSED = "TRANSFER_ID_REUSED"
    TRANSFER_ALREADY_FINALISED = "TRANSFER_ALREADY_FINALISED"
    TRANSFER_ALREADY_RELEASED = "TRANSFER_ALREADY_RELEASED"
    # A transfer is known by (transfer id, coordinator): another coordinator's PREPARE
    # with an id this node already knows is refused, in flight or finished.
    TRANSFER_ID_CLAIMED = "TRANSFER_ID_CLAIMED"
    TRANSFER_ALREADY_FINAL = "TRANSFER_ALREADY_FINAL"
    # The Party's NDC configuration (registry.domain.ndc)
    NDC_NOT_CONFIGURED = "NDC_NOT_CONFIGURED"
    NDC_INVALID_PERIOD = "NDC_INVALID_PERIOD"
    NDC_INVALID_TARGET_YEAR = "NDC_INVALID_TARGET_YEAR"
    NDC_METHOD_MISMATCH = "NDC_METHOD_MISMATCH"
    NDC_NO_METRIC = "NDC_NO_METRIC"
    NDC_LEVEL_OUT_OF_SCOPE = "NDC_LEVEL_OUT_OF_SCOPE"
    NDC_TRAJECTORY_INCOMPLETE = "NDC_TRAJECTORY_INCOMPLETE"


class DomainError(Exception):
    """A rule of the ledger refused a command.

    ``reason`` is the first (main) code; ``reasons`` lists every code found when
    a check collected several, as a receiving node's "no" vote must.
    """

    def __init__(
        self,
        reason: ReasonCode,
        message: str,
        *,
        reasons: Iterable[ReasonCode] = (),
    ) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        collected = tuple(dict.fromkeys((reason, *reasons)))
        self.reasons: tuple[ReasonCode, ...] = collected


def refuse_if_any(reasons: Iterable[ReasonCode], message: str) -> None:
    """Raise one error carrying every collected reason, or return if there are none."""
    found = tuple(dict.fromkeys(reasons))
    if found:
        raise DomainError(found[0], message, reasons=found[1:])
