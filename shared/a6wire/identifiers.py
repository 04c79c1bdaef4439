"""Identifiers of Article 6.2 accounting, as decision 6/CMA.4 writes them.

Parties are ISO 3166 alpha-3 codes, registries are the Party code plus two
digits, cooperative approaches are ``CA`` plus four digits, and a unit's unique
identifier (6/CMA.4, annex I, para 5) joins cooperative approach, originating
registry, first transferring Party, serial number and vintage.
"""

from __future__ import annotations

import re
from typing import Annotated, NamedTuple

from pydantic import StringConstraints

PARTY_PATTERN = r"^[A-Z]{3}$"
REGISTRY_ID_PATTERN = r"^[A-Z]{3}\d{2}$"
COOPERATIVE_APPROACH_ID_PATTERN = r"^CA\d{4}$"
SERIAL_DIGITS_MIN = 9
# The pattern bounds the length (19 digits), parsing bounds the value (SERIAL_MAX).
UNIQUE_IDENTIFIER_PATTERN = r"^(CA\d{4})-([A-Z]{3}\d{2})-([A-Z]{3})-(\d{9,19})-(\d{4})$"

SERIAL_MIN = 1
# The largest integer every JSON reader holds exactly: RFC 8785 (the canonical
# form every signature covers, a6wire.signing) writes numbers as IEEE 754 doubles
# and refuses integers beyond it, and so does a JavaScript or Go float64 reader.
JSON_SAFE_INTEGER_MAX = 2**53 - 1
# Serials and quantities cross between Parties as JSON numbers, so they stop at
# JSON_SAFE_INTEGER_MAX (9,007,199,254,740,991: far beyond any registry's issuance),
# though nodes store them as signed 64-bit integers; versions are signed 32-bit.
# What no node can carry or hold exactly is refused wherever it comes in.
SERIAL_MAX = JSON_SAFE_INTEGER_MAX
QUANTITY_MAX = SERIAL_MAX
VERSION_MAX = 2**31 - 1
VINTAGE_MIN = 2000
VINTAGE_MAX = 2100

_PARTY = re.compile(PARTY_PATTERN)
_REGISTRY_ID = re.compile(REGISTRY_ID_PATTERN)
_COOPERATIVE_APPROACH_ID = re.compile(COOPERATIVE_APPROACH_ID_PATTERN)
_UNIQUE_IDENTIFIER = re.compile(UNIQUE_IDENTIFIER_PATTERN)

# A Letter of Authorisation's id appears in URLs and reports: URL-safe, bounded.
AUTHORISATION_ID_LENGTH_MAX = 64
AUTHORISATION_ID_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9._-]{{0,{AUTHORISATION_ID_LENGTH_MAX - 1}}}$"
# C0 and C1 control characters and DEL have no place in a name or a label; free
# text (an LoA's terms) may keep tab and line breaks. PostgreSQL cannot store NUL,
# and XLSX cannot hold most of the rest.
LABEL_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
_AUTHORISATION_ID = re.compile(AUTHORISATION_ID_PATTERN)
_LABEL = re.compile(LABEL_PATTERN)
_TEXT = re.compile(TEXT_PATTERN)

PartyCode = Annotated[str, StringConstraints(pattern=PARTY_PATTERN)]
RegistryId = Annotated[str, StringConstraints(pattern=REGISTRY_ID_PATTERN)]
CooperativeApproachId = Annotated[str, StringConstraints(pattern=COOPERATIVE_APPROACH_ID_PATTERN)]
AuthorisationId = Annotated[str, StringConstraints(pattern=AUTHORISATION_ID_PATTERN)]


class IdentifierError(ValueError):
    """A string that is not a well-formed Article 6 identifier."""


def is_party_code(value: str) -> bool:
    return bool(_PARTY.fullmatch(value))


def is_registry_id(value: str) -> bool:
    return bool(_REGISTRY_ID.fullmatch(value))


def is_cooperative_approach_id(value: str) -> bool:
    return bool(_COOPERATIVE_APPROACH_ID.fullmatch(value))


def is_authorisation_id(value: str) -> bool:
    return bool(_AUTHORISATION_ID.fullmatch(value))


def is_label(value: str) -> bool:
    """A name or label: no control characters at all."""
    return bool(_LABEL.fullmatch(value))


def is_text(value: str) -> bool:
    """Free text: no control characters but tab and line breaks."""
    return bool(_TEXT.fullmatch(value))


def registry_party(registry_id: str) -> str:
    """The Party that runs a registry: the first three letters of its id."""
    if not is_registry_id(registry_id):
        raise IdentifierError(f"{registry_id!r} is not a registry id (alpha-3 and two digits)")
    return registry_id[:3]


class UnitIdentifier(NamedTuple):
    """The parts of one unit's 6/CMA.4 unique identifier."""

    cooperative_approach_id: str
    originating_registry_id: str
    first_transferring_party: str
    serial: int
    vintage: int

    def __str__(self) -> str:
        return format_unique_identifier(*self)


def format_serial(serial: int) -> str:
    if not SERIAL_MIN <= serial <= SERIAL_MAX:
        raise IdentifierError(f"serial {serial} is outside {SERIAL_MIN}-{SERIAL_MAX}")
    return f"{serial:0{SERIAL_DIGITS_MIN}d}"


def format_unique_identifier(
    cooperative_approach_id: str,
    originating_registry_id: str,
    first_transferring_party: str,
    serial: int,
    vintage: int,
) -> str:
    """Join the parts into ``CA0001-THA01-THA-000000123-2025``, checking each."""
    if not is_cooperative_approach_id(cooperative_approach_id):
        raise IdentifierError(f"{cooperative_approach_id!r} is not a cooperative approach id")
    if not is_registry_id(originating_registry_id):
        raise IdentifierError(f"{originating_registry_id!r} is not a registry id")
    if not is_party_code(first_transferring_party):
        raise IdentifierError(f"{first_transferring_party!r} is not a Party code")
    if not VINTAGE_MIN <= vintage <= VINTAGE_MAX:
        raise IdentifierError(f"vintage {vintage} is outside {VINTAGE_MIN}-{VINTAGE_MAX}")
    return (
        f"{cooperative_approach_id}-{originating_registry_id}-{first_transferring_party}"
        f"-{format_serial(serial)}-{vintage:04d}"
    )


def parse_unique_identifier(value: str) -> UnitIdentifier:
    match = _UNIQUE_IDENTIFIER.fullmatch(value)
    if match is None:
        raise IdentifierError(f"{value!r} is not a 6/CMA.4 unique identifier")
    approach, registry, party, serial, vintage = match.groups()
    if not SERIAL_MIN <= int(serial) <= SERIAL_MAX:
        raise IdentifierError(f"the serial of {value!r} is outside {SERIAL_MIN}-{SERIAL_MAX}")
    if not VINTAGE_MIN <= int(vintage) <= VINTAGE_MAX:
        raise IdentifierError(f"the vintage of {value!r} is outside {VINTAGE_MIN}-{VINTAGE_MAX}")
    return UnitIdentifier(approach, registry, party, int(serial), int(vintage))
