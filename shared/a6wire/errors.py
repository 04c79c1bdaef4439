"""Typed refusals of the wire contract, each with a machine-readable reason code.

A receiving node maps each of these to a log line and, where it answers at all,
to the reason code of a NO vote; the codes are UPPER_SNAKE so that every Party
reads the same refusal the same way.
"""

from __future__ import annotations

from a6wire.reasons import ReasonCode


class WireError(ValueError):
    """A message that this node must not act on."""

    reason_code: ReasonCode = ReasonCode.MALFORMED_MESSAGE


class MalformedMessageError(WireError):
    """Bytes that do not decode into a well-formed envelope of a known schema."""

    reason_code: ReasonCode = ReasonCode.MALFORMED_MESSAGE


class UnsupportedSchemaVersionError(WireError):
    """An envelope written in a schema version this node does not speak."""

    reason_code: ReasonCode = ReasonCode.UNSUPPORTED_SCHEMA_VERSION


class UnknownSenderError(WireError):
    """A sender that is not a member of the federation directory."""

    reason_code: ReasonCode = ReasonCode.UNKNOWN_SENDER


class BadSignatureError(WireError):
    """A signature that does not verify under the sender's directory key."""

    reason_code: ReasonCode = ReasonCode.BAD_SIGNATURE


class KeyExpiredError(WireError):
    """A signature by a member's previous key, made or received after its deadline."""

    reason_code: ReasonCode = ReasonCode.KEY_EXPIRED


class WrongRoleError(WireError):
    """A validly signed message from a Party that may not send it in this transfer."""

    reason_code: ReasonCode = ReasonCode.WRONG_ROLE


# Refusals of bytes before they are an envelope (a6wire.decoding): subclasses of
# MalformedMessageError, each with its own code so an operator sees which bound broke.


class RecordTooLargeError(MalformedMessageError):
    """A record larger than any member may send."""

    reason_code: ReasonCode = ReasonCode.RECORD_TOO_LARGE


class NotUtf8Error(MalformedMessageError):
    """Bytes that are not strict UTF-8."""

    reason_code: ReasonCode = ReasonCode.NOT_UTF8


class NotJsonError(MalformedMessageError):
    """UTF-8 text that is not JSON (NaN and Infinity included)."""

    reason_code: ReasonCode = ReasonCode.NOT_JSON


class NestingTooDeepError(MalformedMessageError):
    """JSON nested deeper than any envelope is."""

    reason_code: ReasonCode = ReasonCode.NESTING_TOO_DEEP


class NumberTooLongError(MalformedMessageError):
    """A number literal longer than any number the schema holds."""

    reason_code: ReasonCode = ReasonCode.NUMBER_TOO_LONG


class DuplicateKeyError(MalformedMessageError):
    """An object naming one key twice: readers could disagree about what was signed."""

    reason_code: ReasonCode = ReasonCode.DUPLICATE_KEY


class DatetimeOutOfRangeError(MalformedMessageError):
    """A timestamp outside the range a protocol message can carry."""

    reason_code: ReasonCode = ReasonCode.DATETIME_OUT_OF_RANGE


class NotCanonicalisableError(MalformedMessageError):
    """A JSON value RFC 8785 cannot encode exactly (an integer beyond 2**53 - 1,
    NaN, a lone surrogate): nobody could reproduce the bytes a signature covers."""

    reason_code: ReasonCode = ReasonCode.NOT_CANONICALISABLE


class NotNormalFormError(MalformedMessageError):
    """A schema 2 envelope that does not re-encode to the canonical bytes received:
    a datetime, UUID or number spelt another way than the schema writes it, or a
    field left out. Storing it would store other bytes than the sender signed."""

    reason_code: ReasonCode = ReasonCode.NOT_NORMAL_FORM
