"""Bounded JSON decoding of records read from the bus.

Anything a peer, or anyone who can write to a topic, puts on the bus reaches
this module before any other code looks at it, so what it accepts is bounded
here, with named limits, and every refusal is a ``WireError`` with a reason
code (never an ``OverflowError``, a ``RecursionError`` or a ``UnicodeDecodeError``
that a caller would not expect):

- the record's size, before anything is parsed (``RECORD_SIZE_MAX_BYTES``);
- strict UTF-8 (``NOT_UTF8``);
- the length of every number literal, checked by the standard library's
  ``parse_int`` / ``parse_float`` hooks before Python converts it, so an integer
  of thousands of digits is never turned into an ``int`` (``NUMBER_TOO_LONG``);
- ``NaN`` and ``Infinity``, which are not JSON (``NOT_JSON``);
- a key repeated in one object, which would let two readers disagree about
  what was signed (``DUPLICATE_KEY``);
- the nesting depth (``NESTING_TOO_DEEP``). The standard library's scanner
  gives no hook on the way down, so the limit is checked on the parsed value,
  without recursion; a document nested deeper than the interpreter's recursion
  limit is refused by the scanner's own guard (a ``RecursionError``) before it
  is ever built, and reported under the same reason.

Datetimes are bounded where they are typed, in ``a6wire.messages``.
"""

from __future__ import annotations

import json
from typing import Any

from a6wire.errors import (
    DuplicateKeyError,
    NestingTooDeepError,
    NotJsonError,
    NotUtf8Error,
    NumberTooLongError,
    RecordTooLargeError,
)

# The outbox refuses rows above 900 KiB (registry.adapters.messaging.outbox) so
# that Kafka's default 1 MiB message limit is never hit; nothing a member sends
# can be larger, and a DECISION carrying a PREPARE of the most blocks allowed
# (BLOCKS_PER_TRANSFER_MAX) stays well below it.
RECORD_SIZE_MAX_BYTES = 900 * 1024
# The deepest legitimate envelope is a DECISION carrying a PREPARE envelope:
# envelope > payload > prepare > payload > blocks > block, about 8 levels.
JSON_NESTING_DEPTH_MAX = 32
# An int64 has 19 digits; a sign and headroom make 32. Serial numbers, quantities
# and versions are the only numbers the schema has, and none comes near it.
JSON_NUMBER_LITERAL_LENGTH_MAX_CHARS = 32


def _bounded_int(literal: str) -> int:
    if len(literal) > JSON_NUMBER_LITERAL_LENGTH_MAX_CHARS:
        raise NumberTooLongError(
            f"a number literal of {len(literal)} characters "
            f"(at most {JSON_NUMBER_LITERAL_LENGTH_MAX_CHARS})"
        )
    return int(literal)


def _bounded_float(literal: str) -> float:
    if len(literal) > JSON_NUMBER_LITERAL_LENGTH_MAX_CHARS:
        raise NumberTooLongError(
            f"a number literal of {len(literal)} characters "
            f"(at most {JSON_NUMBER_LITERAL_LENGTH_MAX_CHARS})"
        )
    return float(literal)


def _no_constant(name: str) -> Any:
    raise NotJsonError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise DuplicateKeyError("a key appears twice in one object")
    return result


def _depth(value: Any) -> int:
    """The nesting depth of a parsed JSON value (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        if depth > JSON_NESTING_DEPTH_MAX:
            return depth
        deepest = max(deepest, depth)
        stack.extend((child, depth) for child in children)
    return deepest


def load_bounded_json(data: bytes | str) -> Any:
    """The JSON value in ``data``, or a ``WireError`` saying which bound it broke."""
    if isinstance(data, str):
        try:
            data = data.encode("utf-8")
        except UnicodeEncodeError as error:  # a lone surrogate in a str
            raise NotUtf8Error(f"not UTF-8: {error.reason}") from error
    if len(data) > RECORD_SIZE_MAX_BYTES:
        raise RecordTooLargeError(
            f"a record of {len(data)} bytes (at most {RECORD_SIZE_MAX_BYTES})"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise NotUtf8Error(f"not UTF-8 at byte {error.start}: {error.reason}") from error
    try:
        value = json.loads(
            text,
            parse_int=_bounded_int,
            parse_float=_bounded_float,
            parse_constant=_no_constant,
            object_pairs_hook=_unique_keys,
        )
    except RecursionError as error:
        raise NestingTooDeepError(
            f"nested deeper than the parser allows (at most {JSON_NESTING_DEPTH_MAX})"
        ) from error
    except json.JSONDecodeError as error:
        raise NotJsonError(f"not JSON: {error}") from error
    if _depth(value) > JSON_NESTING_DEPTH_MAX:
        raise NestingTooDeepError(f"nested deeper than {JSON_NESTING_DEPTH_MAX} levels")
    return value
