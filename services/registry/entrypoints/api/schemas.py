"""Request and response shapes shared by several routers, and their translation.

Requests are validated here (identifier patterns, positive quantities) so that
malformed input is refused with a 422 before any handler runs; responses are
built from domain values, so the API never exposes a table's layout.
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from a6wire.identifiers import (
    AUTHORISATION_ID_PATTERN,
    COOPERATIVE_APPROACH_ID_PATTERN,
    LABEL_PATTERN,
    PARTY_PATTERN,
    QUANTITY_MAX,
    REGISTRY_ID_PATTERN,
    TEXT_PATTERN,
    UNIQUE_IDENTIFIER_PATTERN,
    VERSION_MAX,
    VINTAGE_MAX,
    VINTAGE_MIN,
    IdentifierError,
    parse_unique_identifier,
)
from registry.application.results import MovementResult
from registry.domain.accounts import ACCOUNT_ID_PATTERN, Account, AccountKind, AccountStatus
from registry.domain.blocks import BlockSpec, SerialBlock
from registry.domain.selection import QuantitySelection, SerialRangeSelection, UnitSelection

# Free-text fields (names, reasons, terms) are bounded so that one request
# cannot fill the audit trail or the database with megabytes of prose.
NAME_LENGTH_MAX_CHARS = 200
REASON_LENGTH_MAX_CHARS = 500
TERMS_LENGTH_MAX_CHARS = 10_000
# Sector, activity type, mitigation type, GWP values: short codes or labels.
ATTRIBUTE_LENGTH_MAX_CHARS = 100
ENTITY_ID_LENGTH_MAX_CHARS = 64

# The pydantic error type of an identifier that matches its pattern but names a
# value no node can store (a serial beyond 64 bits); errors.py maps it, like a
# pattern mismatch, to MALFORMED_IDENTIFIER.
MALFORMED_IDENTIFIER_ERROR = "malformed_identifier"
# Patterns of free strings rather than identifiers: a mismatch is MALFORMED_TEXT.
TEXT_PATTERNS = frozenset({LABEL_PATTERN, TEXT_PATTERN})


def _storable_unique_identifier(value: str) -> str:
    try:
        parse_unique_identifier(value)
    except IdentifierError as error:
        raise PydanticCustomError(MALFORMED_IDENTIFIER_ERROR, str(error)) from error
    return value


PartyCode = Annotated[str, StringConstraints(pattern=PARTY_PATTERN)]
RegistryId = Annotated[str, StringConstraints(pattern=REGISTRY_ID_PATTERN)]
CooperativeApproachId = Annotated[str, StringConstraints(pattern=COOPERATIVE_APPROACH_ID_PATTERN)]
UniqueIdentifier = Annotated[
    str,
    StringConstraints(pattern=UNIQUE_IDENTIFIER_PATTERN),
    AfterValidator(_storable_unique_identifier),
]
AccountId = Annotated[str, StringConstraints(pattern=ACCOUNT_ID_PATTERN)]
AuthorisationId = Annotated[str, StringConstraints(pattern=AUTHORISATION_ID_PATTERN)]
EntityId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=ENTITY_ID_LENGTH_MAX_CHARS, pattern=LABEL_PATTERN),
]
AttributeText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=ATTRIBUTE_LENGTH_MAX_CHARS, pattern=LABEL_PATTERN),
]
Name = Annotated[str, StringConstraints(max_length=NAME_LENGTH_MAX_CHARS, pattern=LABEL_PATTERN)]
Reason = Annotated[
    str, StringConstraints(min_length=1, max_length=REASON_LENGTH_MAX_CHARS, pattern=LABEL_PATTERN)
]
Terms = Annotated[str, StringConstraints(max_length=TERMS_LENGTH_MAX_CHARS, pattern=TEXT_PATTERN)]
# Numbers in a JSON body are strict: "5", 5.0 and true are not the integer 5.
Quantity = Annotated[int, Strict(), Field(gt=0, le=QUANTITY_MAX)]
Vintage = Annotated[int, Strict(), Field(ge=VINTAGE_MIN, le=VINTAGE_MAX)]
Version = Annotated[int, Strict(), Field(ge=1, le=VERSION_MAX)]
# Path and query values arrive as text: parsed, so not strict, but bounded alike.
VintageParam = Annotated[int, Field(ge=VINTAGE_MIN, le=VINTAGE_MAX)]


class RequestModel(BaseModel):
    """Requests refuse unknown fields: a misspelt field is a mistake, not a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SelectsUnits(RequestModel):
    """Which units a command moves: a quantity (oldest blocks first), or an exact range.

    Give either ``quantity`` (optionally narrowed to one cooperative approach
    and/or vintage) or ``first_identifier`` and ``last_identifier`` of one block
    range, as 6/CMA.4 unique identifiers.
    """

    quantity: Quantity | None = None
    cooperative_approach_id: CooperativeApproachId | None = None
    vintage: Vintage | None = None
    first_identifier: UniqueIdentifier | None = None
    last_identifier: UniqueIdentifier | None = None

    @model_validator(mode="after")
    def _one_way_of_selecting(self) -> Self:
        by_range = self.first_identifier is not None or self.last_identifier is not None
        if by_range == (self.quantity is not None):
            raise ValueError(
                "give either quantity or first_identifier and last_identifier, not both or neither"
            )
        if by_range:
            if self.cooperative_approach_id is not None or self.vintage is not None:
                raise ValueError(
                    "a serial range already names its cooperative approach and vintage"
                )
            self._range()
        return self

    def _range(self) -> SerialRangeSelection:
        if self.first_identifier is None or self.last_identifier is None:
            raise ValueError("a serial range needs both first_identifier and last_identifier")
        try:
            first = parse_unique_identifier(self.first_identifier)
            last = parse_unique_identifier(self.last_identifier)
        except IdentifierError as error:
            raise ValueError(str(error)) from error
        # Only the serial may differ: a block never mixes attributes.
        if first._replace(serial=0) != last._replace(serial=0):
            raise ValueError("first and last identifier belong to different blocks")
        if first.serial > last.serial:
            raise ValueError("first_identifier comes after last_identifier")
        return SerialRangeSelection(first.originating_registry_id, first.serial, last.serial)

    def selection(self) -> UnitSelection:
        if self.quantity is not None:
            return QuantitySelection(self.quantity, self.cooperative_approach_id, self.vintage)
        return self._range()


class BlockOut(BaseModel):
    """A serial block: its first and last unique identifier and shared attributes."""

    first_identifier: str
    last_identifier: str
    first_serial: int
    last_serial: int
    quantity: int
    cooperative_approach_id: str
    originating_registry_id: str
    first_transferring_party: str
    vintage: int
    metric: str
    gwp_values: str
    mitigation_type: str
    sector: str
    activity_type: str
    first_transfer_done: bool
    authorisation_id: str | None
    authorisation_version: int | None

    @classmethod
    def of(cls, block: BlockSpec | SerialBlock) -> BlockOut:
        attributes = block.attributes
        return cls(
            first_identifier=attributes.unit_identifier(block.first_serial),
            last_identifier=attributes.unit_identifier(block.last_serial),
            first_serial=block.first_serial,
            last_serial=block.last_serial,
            quantity=block.quantity,
            cooperative_approach_id=attributes.cooperative_approach_id,
            originating_registry_id=attributes.originating_registry_id,
            first_transferring_party=attributes.first_transferring_party,
            vintage=attributes.vintage,
            metric=attributes.metric,
            gwp_values=attributes.gwp_values,
            mitigation_type=attributes.mitigation_type,
            sector=attributes.sector,
            activity_type=attributes.activity_type,
            first_transfer_done=attributes.first_transfer_done,
            authorisation_id=attributes.authorisation_id,
            authorisation_version=attributes.authorisation_version,
        )


class MovementOut(BaseModel):
    """Units moved by an issuance, internal transfer, use or cancellation."""

    quantity: int
    blocks: list[BlockOut]

    @classmethod
    def of(cls, result: MovementResult) -> MovementOut:
        return cls(quantity=result.quantity, blocks=[BlockOut.of(block) for block in result.blocks])


class AccountOut(BaseModel):
    account_id: str
    kind: AccountKind
    status: AccountStatus
    holder_entity_id: str | None
    name: str

    @classmethod
    def of(cls, account: Account) -> AccountOut:
        return cls(
            account_id=account.account_id,
            kind=account.kind,
            status=account.status,
            holder_entity_id=account.holder_entity_id,
            name=account.name,
        )
