"""Bounded decoding of bus records: every bound at its edge, and nothing but WireError."""

from __future__ import annotations

import contextlib
import inspect
import json
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from a6wire import errors
from a6wire.decoding import (
    JSON_NESTING_DEPTH_MAX,
    JSON_NUMBER_LITERAL_LENGTH_MAX_CHARS,
    RECORD_SIZE_MAX_BYTES,
    load_bounded_json,
)
from a6wire.errors import WireError
from a6wire.signing import seal
from a6wire.verification import decode_envelope, encode_envelope
from tests.sim import factories

pytestmark = pytest.mark.unit

# Enough examples to find the escapes the old decoder had, quick enough for `make test`.
EXAMPLES_MAX = 200


def _reason(data: bytes | str) -> str:
    with pytest.raises(WireError) as error:
        decode_envelope(data)
    return error.value.reason_code


def _nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def _envelope_raw(**changes: Any) -> dict[str, Any]:
    prepare = factories.prepare(
        uuid.UUID(int=7), "CHE", ["GHA"], [factories.block(1, 10)], factories.at(60_000)
    )
    envelope = seal(
        prepare,
        sender_party="CHE",
        sent_at=factories.at(0),
        message_id=uuid.UUID(int=1),
        private_key=factories.party_key("CHE"),
    )
    raw: dict[str, Any] = json.loads(encode_envelope(envelope))
    raw.update(changes)
    return raw


def test_size_is_bounded_before_parsing() -> None:
    at_limit = b'"' + b"x" * (RECORD_SIZE_MAX_BYTES - 2) + b'"'
    assert len(at_limit) == RECORD_SIZE_MAX_BYTES
    assert load_bounded_json(at_limit) == "x" * (RECORD_SIZE_MAX_BYTES - 2)
    assert _reason(at_limit + b" ") == "RECORD_TOO_LARGE"
    # Measured in UTF-8 bytes, also when given text.
    assert _reason("é" * (RECORD_SIZE_MAX_BYTES // 2 + 1)) == "RECORD_TOO_LARGE"


def test_nesting_is_bounded_including_past_the_recursion_limit() -> None:
    assert load_bounded_json(_nested(JSON_NESTING_DEPTH_MAX)) is not None
    assert _reason(_nested(JSON_NESTING_DEPTH_MAX + 1)) == "NESTING_TOO_DEEP"
    assert _reason(b'{"a": ' * 40 + b"1" + b"}" * 40) == "NESTING_TOO_DEEP"
    # Deeper than the interpreter's recursion limit: the scanner's guard, same code.
    assert _reason(_nested(100_000)) == "NESTING_TOO_DEEP"


def test_number_literals_are_bounded_before_conversion() -> None:
    longest = "9" * JSON_NUMBER_LITERAL_LENGTH_MAX_CHARS
    assert load_bounded_json(f"[{longest}]") == [int(longest)]
    assert _reason(f"[{longest}9]") == "NUMBER_TOO_LONG"
    # Past CPython's own int() digit limit, which raises a bare ValueError.
    assert _reason(b'{"schema_version": 1, "n": ' + b"9" * 5_000 + b"}") == "NUMBER_TOO_LONG"
    assert _reason("[1." + "5" * JSON_NUMBER_LITERAL_LENGTH_MAX_CHARS + "]") == "NUMBER_TOO_LONG"
    assert _reason("[1e99999]") == "MALFORMED_MESSAGE"  # short, becomes inf: not an envelope


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_constants_are_refused(constant: str) -> None:
    assert _reason(f'{{"a": {constant}}}') == "NOT_JSON"


def test_text_must_be_utf8_json() -> None:
    assert _reason(b'{"a": "\xff"}') == "NOT_UTF8"
    assert _reason("\udcff") == "NOT_UTF8"  # a lone surrogate in a str
    assert _reason(b"this is not JSON {") == "NOT_JSON"
    assert _reason(b"") == "NOT_JSON"


def test_a_key_named_twice_is_refused() -> None:
    assert _reason(b'{"schema_version": 1, "schema_version": 1}') == "DUPLICATE_KEY"


@pytest.mark.parametrize(
    "sent_at",
    [
        "9999-12-31T23:59:59-23:59",  # overflows on conversion to UTC
        "0001-01-01T00:00:00+23:59",  # underflows
        "1999-12-31T23:59:59Z",
        "2200-01-01T00:00:00Z",
    ],
)
def test_datetimes_out_of_range_are_refused(sent_at: str) -> None:
    assert _reason(json.dumps(_envelope_raw(sent_at=sent_at))) == "DATETIME_OUT_OF_RANGE"


def test_datetimes_at_the_edges_of_the_range_decode() -> None:
    from a6wire.messages import DATETIME_MAX, DATETIME_MIN

    for instant in (DATETIME_MIN, DATETIME_MAX - timedelta(microseconds=1)):
        # The one form a datetime takes on the wire: UTC with a Z suffix.
        raw = _envelope_raw(sent_at=instant.isoformat().replace("+00:00", "Z"))
        assert decode_envelope(json.dumps(raw)).sent_at == instant


def test_an_out_of_range_deadline_inside_the_payload_is_refused_too() -> None:
    raw = _envelope_raw()
    raw["payload"]["deadline"] = "9999-12-31T23:59:59-23:59"
    assert _reason(json.dumps(raw)) == "DATETIME_OUT_OF_RANGE"


def test_every_refusal_code_is_distinct_and_upper_snake() -> None:
    classes = [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, WireError) and cls is not WireError
    ]
    codes = [cls.reason_code for cls in classes]
    assert len(set(codes)) == len(codes)
    assert all(re.fullmatch(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)*", code) for code in codes)


# Fragments of hostile JSON, each repeated up to a few thousand times, so that
# runs (deep nesting, long numbers, huge strings) are as likely as noise; the
# first run opens a container, so what follows is read as JSON for a while.
_OPENERS = (b"[", b'{"a":', b'{"schema_version":', b'["')
_FRAGMENTS = (b"]", b"}", b",", b"9", b"-", b".", b"e", b'"', b"\\", b"\xff", *_OPENERS)
_REPEAT_MAX = 5_000
_run = st.tuples(
    st.sampled_from(_FRAGMENTS) | st.binary(min_size=1, max_size=8),
    st.integers(1, _REPEAT_MAX),
)
_hostile_bytes = st.tuples(
    st.tuples(st.sampled_from(_OPENERS), st.integers(1, _REPEAT_MAX)),
    st.lists(_run, max_size=5),
).map(lambda runs: b"".join(fragment * repeat for fragment, repeat in (runs[0], *runs[1])))


@settings(max_examples=EXAMPLES_MAX, deadline=None)
@given(st.binary(max_size=2_048) | _hostile_bytes)
def test_any_bytes_decode_or_are_refused_with_a_wire_error(data: bytes) -> None:
    # The assertion is the exception's type: a WireError is a refusal, anything
    # else (RecursionError, OverflowError, a bare ValueError) fails the test.
    with contextlib.suppress(WireError):
        decode_envelope(data)


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=40,
)


@settings(max_examples=EXAMPLES_MAX, deadline=None)
@given(_json_values)
def test_json_within_the_bounds_reads_as_the_standard_library_does(value: Any) -> None:
    text = json.dumps(value)
    assert load_bounded_json(text) == json.loads(text)


@settings(max_examples=EXAMPLES_MAX, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(_envelope_raw())), _json_values, max_size=8))
def test_envelope_shaped_garbage_is_refused_with_a_wire_error(changes: dict[str, Any]) -> None:
    # Real field names with arbitrary values reach pydantic's validators.
    with contextlib.suppress(WireError):
        decode_envelope(json.dumps(_envelope_raw(**changes)))
