"""Typed domain errors carrying stable, machine-readable reason codes.

The codes are part of the public contract: the API maps them to responses and
a receiving node puts them in a "no" vote, so a code is never renamed. They are
defined once, with every other reason code of the federation, in ``a6wire.reasons``.
"""

from __future__ import annotations

from collections.abc import Iterable

from a6wire.reasons import LEDGER_REASON_CODES, ReasonCode


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


__all__ = ["LEDGER_REASON_CODES", "DomainError", "ReasonCode", "refuse_if_any"]
