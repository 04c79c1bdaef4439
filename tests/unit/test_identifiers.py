import pytest
from hypothesis import given
from hypothesis import strategies as st

from a6wire.identifiers import (
    IdentifierError,
    UnitIdentifier,
    format_unique_identifier,
    parse_unique_identifier,
    registry_party,
)

pytestmark = pytest.mark.unit


def test_formats_the_example_from_6_cma_4() -> None:
    assert (
        format_unique_identifier("CA0001", "THA01", "THA", 123, 2025)
        == "CA0001-THA01-THA-000000123-2025"
    )


@pytest.mark.parametrize(
    "parts",
    [
        ("CA001", "THA01", "THA", 1, 2025),
        ("CA0001", "THA1", "THA", 1, 2025),
        ("CA0001", "THA01", "th", 1, 2025),
        ("CA0001", "THA01", "THA", 0, 2025),
        ("CA0001", "THA01", "THA", 1, 1999),
    ],
)
def test_refuses_malformed_parts(parts: tuple[str, str, str, int, int]) -> None:
    with pytest.raises(IdentifierError):
        format_unique_identifier(*parts)


@pytest.mark.parametrize("text", ["", "CA0001-THA01-THA-123-2025", "CA0001-THA01-THA-000000123-25"])
def test_refuses_malformed_identifiers(text: str) -> None:
    with pytest.raises(IdentifierError):
        parse_unique_identifier(text)


def test_registry_party_is_the_alpha_3_prefix() -> None:
    assert registry_party("GHA01") == "GHA"
    with pytest.raises(IdentifierError):
        registry_party("GHA")


@given(
    approach=st.integers(0, 9999),
    party=st.from_regex(r"\A[A-Z]{3}\Z"),
    registry_suffix=st.integers(0, 99),
    serial=st.integers(1, 10**12),
    vintage=st.integers(2000, 2100),
)
def test_format_and_parse_round_trip(
    approach: int, party: str, registry_suffix: int, serial: int, vintage: int
) -> None:
    unit = UnitIdentifier(
        f"CA{approach:04d}", f"{party}{registry_suffix:02d}", party, serial, vintage
    )
    assert parse_unique_identifier(str(unit)) == unit
