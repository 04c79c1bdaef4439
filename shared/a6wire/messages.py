"""The protocol messages and the signed envelope that carries them.

Schema version 2.0 (see "Schema versions" below). Every message crossing
between Parties is an ``Envelope`` whose ``payload`` is one of ``Prepare``,
``Vote``, ``Decision`` or ``Done``, told apart by its ``type`` field. Models
are frozen; what was signed is exactly what is read back (see ``a6wire.signing``).

Schema versions. An envelope's ``schema_version`` is ``"MAJOR.MINOR"`` (a JSON
string, e.g. ``"2.0"``), or the integer ``1`` of the records written before
versions had two parts (kept forever on the decision topic and the unit log).

- A new MINOR only adds optional fields, left out of the JSON when they have no
  value (so a message of the older minor re-encodes unchanged on a newer node,
  which ``decode_envelope`` checks). A node reads a message of any minor of
  its major: an older minor lacks fields it knows, which keep their defaults; a
  newer minor may carry fields it does not know, which it keeps, untouched, in
  the model (``model_extra``) so that the message re-encodes to exactly what was
  signed, is stored, embedded in a DECISION and digested with them. Unknown
  fields in a message of this node's minor or an older one are refused, as
  before (they are a typo or a forgery, not a newer schema).
- A new MAJOR changes meaning or the signed form; a node refuses majors it does
  not know with ``UNSUPPORTED_SCHEMA_VERSION`` before reading the payload.
- Major 1 signed pydantic's sorted-keys JSON dump; major 2 signs the RFC 8785
  form of the JSON (``a6wire.signing``), which any implementation can reproduce.

So models accept unknown fields at parse time (``extra="allow"``) and the
envelope's own validator decides, by its version, whether they are allowed;
code that builds messages is kept from passing unknown fields by mypy
(``init_forbid_extra`` in the pydantic plugin).

A ``Decision`` embeds envelopes (the participants' signed YES votes, and the
coordinator's signed PREPARE: always in a COMMIT, so that the decision topic
alone tells which serial ranges moved between which Parties, and in an ABORT
written by a participant), so that anyone reading the decision topic can check
it without having seen the rest of the conversation.

A ``UnitRecord`` (type ``UNITS``) is a registry's announcement on the federation
unit log that serial ranges were issued or left circulation.
"""

from __future__ import annotations

import itertools
import re
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, NamedTuple
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from a6wire.identifiers import (
    LABEL_PATTERN,
    QUANTITY_MAX,
    SERIAL_MAX,
    SERIAL_MIN,
    TEXT_PATTERN,
    VERSION_MAX,
    VINTAGE_MAX,
    VINTAGE_MIN,
    AuthorisationId,
    CooperativeApproachId,
    PartyCode,
    RegistryId,
    registry_party,
)

# The version this node writes, and the versions it reads (see the module docstring).
SCHEMA_MAJOR = 2
SCHEMA_MINOR = 0
SCHEMA_VERSION = f"{SCHEMA_MAJOR}.{SCHEMA_MINOR}"
# Records written before versions had a minor: ``"schema_version": 1``.
LEGACY_SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_MAJORS: frozenset[int] = frozenset({LEGACY_SCHEMA_VERSION, SCHEMA_MAJOR})
# Up to four digits each, no leading zeros: one spelling per version.
SCHEMA_VERSION_PATTERN = r"^(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})$"
_SCHEMA_VERSION = re.compile(SCHEMA_VERSION_PATTERN)


class WireVersion(NamedTuple):
    major: int
    minor: int


def parse_schema_version(value: object) -> WireVersion | None:
    """The version an envelope's ``schema_version`` names, or None if it is not
    a well-formed one: the integer ``1`` or a ``"MAJOR.MINOR"`` string."""
    if isinstance(value, int) and not isinstance(value, bool):
        return WireVersion(value, 0) if value == LEGACY_SCHEMA_VERSION else None
    if isinstance(value, str):
        match = _SCHEMA_VERSION.fullmatch(value)
        if match is not None:
            major, minor = (int(part) for part in match.groups())
            # Major 1 was only ever written as the integer 1.
            return WireVersion(major, minor) if major != LEGACY_SCHEMA_VERSION else None
    return None


def is_supported(version: WireVersion) -> bool:
    return version.major in SUPPORTED_SCHEMA_MAJORS


# Limits on everything a peer can make us hold in memory or in a database row:
# what a receiving node's columns cannot store (a serial beyond 64 bits, NUL in a
# string) is refused here, as a malformed message, before any handler runs.
BLOCKS_PER_TRANSFER_MAX = 1_000
PARTICIPANTS_PER_TRANSFER_MAX = 16
REASON_CODES_PER_MESSAGE_MAX = 32
TEXT_LENGTH_MAX = 2_000
NAME_LENGTH_MAX = 200
ENTRIES_PER_LIST_MAX = 200
ACCOUNT_ID_LENGTH_MAX = 64

REASON_CODE_PATTERN = r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$"
SHA256_HEX_PATTERN = r"^[0-9a-f]{64}$"


# Every timestamp a protocol message carries (sent_at, a deadline) is "now" or a
# few hours from now; outside this range it is garbage, and near datetime's own
# limits converting it to UTC would overflow.
DATETIME_MIN = datetime(2000, 1, 1, tzinfo=UTC)
DATETIME_MAX = datetime(2200, 1, 1, tzinfo=UTC)
# The pydantic error type under which a6wire.verification reports DATETIME_OUT_OF_RANGE.
DATETIME_OUT_OF_RANGE_ERROR = "datetime_out_of_range"


def _as_utc(value: datetime) -> datetime:
    # One representation per instant, so the canonical bytes of a message do not
    # depend on the sender's local offset.
    try:
        in_utc = value.astimezone(UTC)
    except OverflowError:
        in_utc = None
    if in_utc is None or not DATETIME_MIN <= in_utc < DATETIME_MAX:
        raise PydanticCustomError(
            DATETIME_OUT_OF_RANGE_ERROR,
            "datetime outside {low} to {high}",
            {"low": DATETIME_MIN.isoformat(), "high": DATETIME_MAX.isoformat()},
        )
    return in_utc


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_as_utc)]
ReasonCode = Annotated[str, StringConstraints(pattern=REASON_CODE_PATTERN, max_length=64)]
AccountId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=ACCOUNT_ID_LENGTH_MAX, pattern=LABEL_PATTERN),
]
Name = Annotated[
    str, StringConstraints(min_length=1, max_length=NAME_LENGTH_MAX, pattern=LABEL_PATTERN)
]
Serial = Annotated[int, Field(ge=SERIAL_MIN, le=SERIAL_MAX)]
Quantity = Annotated[int, Field(ge=1, le=QUANTITY_MAX)]
Version = Annotated[int, Field(ge=1, le=VERSION_MAX)]
Sha256Hex = Annotated[str, StringConstraints(pattern=SHA256_HEX_PATTERN)]


class _Frozen(BaseModel):
    # Unknown fields are kept, not dropped: whether they are allowed depends on the
    # version of the envelope they came in, which Envelope._coherent checks.
    model_config = ConfigDict(frozen=True, extra="allow", strict=False)


class MessageType(StrEnum):
    PREPARE = "PREPARE"
    VOTE = "VOTE"
    DECISION = "DECISION"
    DONE = "DONE"
    FIRST_TRANSFER_NOTICE = "FIRST_TRANSFER_NOTICE"
    UNITS = "UNITS"


class Purpose(StrEnum):
    """What the acquired ITMOs may be used for (AEF table 2)."""

    NDC = "NDC"
    OIMP = "OIMP"


class FirstTransferDefinition(StrEnum):
    """When an OIMP authorisation says the first transfer happens (AEF table 2)."""

    AUTHORISATION = "authorisation"
    ISSUANCE = "issuance"
    USE_OR_CANCELLATION = "use_or_cancellation"


class SerialBlock(_Frozen):
    """A contiguous range of serial numbers sharing one attribute set.

    The quantity is carried explicitly and must equal ``last - first + 1``: a
    receiver checks the arithmetic rather than trusting either number.
    """

    first_serial: Serial
    last_serial: Serial
    quantity: Quantity
    cooperative_approach_id: CooperativeApproachId
    originating_registry_id: RegistryId
    first_transferring_party: PartyCode
    vintage: int = Field(ge=VINTAGE_MIN, le=VINTAGE_MAX)
    metric: Name
    # The IPCC assessment report and horizon of the GWP values, e.g. "AR5-GWP100";
    # a string, not a float, so the canonical encoding is exact.
    gwp: Name
    mitigation_type: Name
    sector: Name
    activity_type: Name
    first_transfer_done: bool
    authorisation_id: AuthorisationId
    authorisation_version: Version

    @model_validator(mode="after")
    def _quantity_matches_range(self) -> SerialBlock:
        if self.first_serial > self.last_serial:
            raise ValueError("first_serial is after last_serial")
        if self.quantity != self.last_serial - self.first_serial + 1:
            raise ValueError(
                f"quantity {self.quantity} is not last - first + 1 = "
                f"{self.last_serial - self.first_serial + 1}"
            )
        return self


class AuthorisationSnapshot(_Frozen):
    """The Letter of Authorisation version the transfer relies on (AEF table 2)."""

    authorisation_id: AuthorisationId
    authorisation_date: date
    cooperative_approach_id: CooperativeApproachId
    version: Version
    quantity_cap: Quantity | None = None
    authorised_parties: tuple[PartyCode, ...] = Field(min_length=1, max_length=ENTRIES_PER_LIST_MAX)
    authorised_entities: tuple[Name, ...] = Field(default=(), max_length=ENTRIES_PER_LIST_MAX)
    purposes: tuple[Purpose, ...] = Field(min_length=1, max_length=2)
    mitigation_from: date | None = None
    mitigation_to: date | None = None
    use_from: date | None = None
    use_to: date | None = None
    terms: str = Field(default="", max_length=TEXT_LENGTH_MAX, pattern=TEXT_PATTERN)
    first_transfer_definition: FirstTransferDefinition | None = None

    @model_validator(mode="after")
    def _coherent(self) -> AuthorisationSnapshot:
        if Purpose.OIMP in self.purposes and self.first_transfer_definition is None:
            raise ValueError("an OIMP authorisation must define the first transfer")
        for start, end in (
            (self.mitigation_from, self.mitigation_to),
            (self.use_from, self.use_to),
        ):
            if start is not None and end is not None and start > end:
                raise ValueError("a timeframe ends before it starts")
        return self


class Prepare(_Frozen):
    """The coordinator asks every participant to validate and hold the transfer.

    ``participants`` are the Parties whose YES vote the COMMIT needs; the
    coordinator (the transferring Party) is never one of them, its agreement is
    its own signature on the COMMIT.
    """

    type: Literal[MessageType.PREPARE] = MessageType.PREPARE
    transfer_id: UUID
    coordinator_party: PartyCode
    participants: tuple[PartyCode, ...] = Field(
        min_length=1, max_length=PARTICIPANTS_PER_TRANSFER_MAX
    )
    from_registry_id: RegistryId
    from_account_id: AccountId
    to_registry_id: RegistryId
    to_account_id: AccountId
    blocks: tuple[SerialBlock, ...] = Field(min_length=1, max_length=BLOCKS_PER_TRANSFER_MAX)
    authorisation: AuthorisationSnapshot
    purpose: Purpose
    deadline: UtcDatetime

    @model_validator(mode="after")
    def _coherent(self) -> Prepare:
        if len(set(self.participants)) != len(self.participants):
            raise ValueError("a participant is named twice")
        if self.coordinator_party in self.participants:
            raise ValueError("the coordinator is not one of the voting participants")
        if registry_party(self.from_registry_id) != self.coordinator_party:
            raise ValueError("the coordinator must be the Party of the transferring registry")
        if registry_party(self.to_registry_id) not in self.participants:
            raise ValueError("the acquiring registry's Party must be a participant")
        # Serial numbers are unique within one originating registry and approach.
        ordered = sorted(
            self.blocks,
            key=lambda block: (
                block.originating_registry_id,
                block.cooperative_approach_id,
                block.first_serial,
            ),
        )
        for earlier, later in itertools.pairwise(ordered):
            if (
                earlier.originating_registry_id == later.originating_registry_id
                and earlier.cooperative_approach_id == later.cooperative_approach_id
                and later.first_serial <= earlier.last_serial
            ):
                raise ValueError("two blocks overlap")
        if self.purpose not in self.authorisation.purposes:
            raise ValueError("the authorisation does not cover the stated purpose")
        return self

    @property
    def quantity(self) -> int:
        return sum(block.quantity for block in self.blocks)


class VoteChoice(StrEnum):
    YES = "YES"
    NO = "NO"


class Vote(_Frozen):
    """A participant's answer to one PREPARE, bound to it by the PREPARE's digest."""

    type: Literal[MessageType.VOTE] = MessageType.VOTE
    transfer_id: UUID
    coordinator_party: PartyCode
    prepare_digest: Sha256Hex
    vote: VoteChoice
    reason_codes: tuple[ReasonCode, ...] = Field(
        default=(), max_length=REASON_CODES_PER_MESSAGE_MAX
    )

    @model_validator(mode="after")
    def _reasons_match_vote(self) -> Vote:
        if self.vote is VoteChoice.YES and self.reason_codes:
            raise ValueError("a YES vote carries no reason codes")
        if self.vote is VoteChoice.NO and not self.reason_codes:
            raise ValueError("a NO vote must say why")
        return self


class Outcome(StrEnum):
    COMMIT = "COMMIT"
    ABORT = "ABORT"


class Decision(_Frozen):
    """A record on the decision topic; the first valid one per transfer wins.

    A COMMIT is written by the coordinator and carries every participant's signed
    YES vote and the coordinator's signed PREPARE they answer (what moved). An
    ABORT is written by the coordinator or by a participant; a participant's
    ABORT carries the coordinator's signed PREPARE so that anyone can check the
    writer really is a participant of that transfer.
    """

    type: Literal[MessageType.DECISION] = MessageType.DECISION
    transfer_id: UUID
    outcome: Outcome
    decided_by: PartyCode
    coordinator_party: PartyCode
    participants: tuple[PartyCode, ...] = Field(
        min_length=1, max_length=PARTICIPANTS_PER_TRANSFER_MAX
    )
    prepare_digest: Sha256Hex
    yes_votes: tuple[Envelope, ...] = Field(default=(), max_length=PARTICIPANTS_PER_TRANSFER_MAX)
    prepare: Envelope | None = None
    reason_codes: tuple[ReasonCode, ...] = Field(
        default=(), max_length=REASON_CODES_PER_MESSAGE_MAX
    )

    @model_validator(mode="after")
    def _shape(self) -> Decision:
        if len(set(self.participants)) != len(self.participants):
            raise ValueError("a participant is named twice")
        if self.coordinator_party in self.participants:
            raise ValueError("the coordinator is not one of the voting participants")
        if self.outcome is Outcome.COMMIT:
            if self.decided_by != self.coordinator_party:
                raise ValueError("only the coordinator may decide COMMIT")
            if len(self.yes_votes) != len(self.participants):
                raise ValueError("a COMMIT carries one YES vote per participant")
        else:
            if self.yes_votes:
                raise ValueError("an ABORT carries no votes")
            if self.decided_by not in (self.coordinator_party, *self.participants):
                raise ValueError("only the coordinator or a participant may decide ABORT")
            if self.decided_by != self.coordinator_party and self.prepare is None:
                raise ValueError("a participant's ABORT carries the coordinator's PREPARE")
        return self


class DoneOutcome(StrEnum):
    COMMITTED = "COMMITTED"
    ABORTED = "ABORTED"


class Done(_Frozen):
    """A participant tells the coordinator it has applied the winning decision."""

    type: Literal[MessageType.DONE] = MessageType.DONE
    transfer_id: UUID
    coordinator_party: PartyCode
    outcome: DoneOutcome


class NoticeAction(StrEnum):
    """What happened to the units, making it their first transfer."""

    USE_FOR_OIMP = "USE_FOR_OIMP"
    CANCELLATION = "CANCELLATION"


class FirstTransferNotice(_Frozen):
    """A registry tells the first-transferring Party that units under its LoA were used
    for OIMP or cancelled there, which that LoA defines as their first transfer.

    Sent to the authorising Party's inbox, once per use or cancellation and LoA;
    the authorising Party records its corresponding adjustment on receipt. It is
    about no transfer, so its envelope is keyed by ``notice_id``.
    """

    type: Literal[MessageType.FIRST_TRANSFER_NOTICE] = MessageType.FIRST_TRANSFER_NOTICE
    notice_id: UUID
    authorising_party: PartyCode
    noticing_registry_id: RegistryId
    authorisation_id: Name
    authorisation_version: Version
    action: NoticeAction
    # The year of the use or cancellation.
    year: int = Field(ge=VINTAGE_MIN, le=VINTAGE_MAX)
    occurred_at: UtcDatetime
    blocks: tuple[SerialBlock, ...] = Field(min_length=1, max_length=BLOCKS_PER_TRANSFER_MAX)

    @property
    def transfer_id(self) -> UUID:
        """The key every envelope carries; a notice is keyed by its own id."""
        return self.notice_id

    @model_validator(mode="after")
    def _coherent(self) -> FirstTransferNotice:
        if registry_party(self.noticing_registry_id) == self.authorising_party:
            raise ValueError("a Party does not send itself a first-transfer notice")
        for block in self.blocks:
            if (
                block.first_transferring_party != self.authorising_party
                or block.authorisation_id != self.authorisation_id
            ):
                raise ValueError("every block is under the authorising Party's named LoA")
        return self


class UnitEvent(StrEnum):
    """What a unit log record announces about a serial range."""

    ISSUED = "ISSUED"
    # Leaving circulation: cancelled (voluntarily, OMGE) or used (NDC, OIMP).
    CANCELLED = "CANCELLED"
    USED = "USED"


class UnitRecord(_Frozen):
    """A registry's public, Party-level announcement on the federation unit log.

    An issuance is announced by the originating registry; a cancellation or use by
    the registry of the Party that held the units. No account or holder appears:
    only what the AEF makes public anyway. ``transfer_id`` is the record's own id
    (the envelope names every record by it); there is no transfer behind it.
    """

    type: Literal[MessageType.UNITS] = MessageType.UNITS
    transfer_id: UUID
    event: UnitEvent
    party: PartyCode
    cooperative_approach_id: CooperativeApproachId
    originating_registry_id: RegistryId
    first_serial: Serial
    last_serial: Serial
    quantity: Quantity
    vintage: int = Field(ge=VINTAGE_MIN, le=VINTAGE_MAX)
    metric: Name
    authorisation_id: Name | None = None
    authorisation_version: Version | None = None

    @model_validator(mode="after")
    def _coherent(self) -> UnitRecord:
        if self.first_serial > self.last_serial:
            raise ValueError("first_serial is after last_serial")
        if self.quantity != self.last_serial - self.first_serial + 1:
            raise ValueError("quantity is not last - first + 1")
        if self.event is UnitEvent.ISSUED and registry_party(self.originating_registry_id) != (
            self.party
        ):
            raise ValueError("units are issued by the Party of their originating registry")
        return self


Payload = Annotated[
    Prepare | Vote | Decision | Done | FirstTransferNotice | UnitRecord,
    Field(discriminator="type"),
]


class Envelope(_Frozen):
    """One signed protocol message.

    ``signature`` is base64 (RFC 4648, with padding) of the Ed25519 signature
    over ``a6wire.signing.canonical_bytes`` of every other field.
    """

    message_id: UUID
    transfer_id: UUID
    message_type: MessageType
    sender_party: PartyCode
    sent_at: UtcDatetime
    # StrictInt first: the legacy integer 1 stays an integer, "2.0" stays a string,
    # so the envelope re-encodes to what was signed.
    schema_version: StrictInt | Annotated[StrictStr, StringConstraints(max_length=16)]
    payload: Payload
    signature: str = Field(default="", max_length=128)

    @property
    def version(self) -> WireVersion:
        version = parse_schema_version(self.schema_version)
        assert version is not None, "checked by _coherent"
        return version

    @property
    def tolerates_unknown_fields(self) -> bool:
        """Only a newer minor of this node's major may carry fields it does not know."""
        version = self.version
        return version.major == SCHEMA_MAJOR and version.minor > SCHEMA_MINOR

    @model_validator(mode="after")
    def _coherent(self) -> Envelope:
        version = parse_schema_version(self.schema_version)
        if version is None or not is_supported(version):
            raise ValueError(f"schema version {self.schema_version!r} is not supported")
        unknown = unknown_fields(self)
        if unknown:
            raise ValueError(
                f"unknown field(s) {', '.join(unknown)} in a schema {self.schema_version} "
                f"message (this node reads {SCHEMA_VERSION})"
            )
        if self.message_type != self.payload.type:
            raise ValueError("message_type does not match the payload type")
        if self.transfer_id != self.payload.transfer_id:
            raise ValueError("the envelope and payload name different transfers")
        return self


def unknown_fields(envelope: Envelope) -> list[str]:
    """The paths of fields a message carries that its version does not allow.

    Each envelope answers for its own fields down to the next nested envelope,
    which answers for its own (a COMMIT of minor 0 may embed a vote of minor 1).
    """
    found: list[str] = []
    stack: list[tuple[Any, str, bool]] = [(envelope, "", False)]
    while stack:
        value, path, tolerated = stack.pop()
        if isinstance(value, Envelope):
            tolerated = value.tolerates_unknown_fields
        if isinstance(value, BaseModel):
            if value.model_extra and not tolerated:
                found.extend(f"{path}{name}" for name in sorted(value.model_extra))
            for name in type(value).model_fields:
                stack.append((getattr(value, name), f"{path}{name}.", tolerated))
        elif isinstance(value, tuple):
            stack.extend((item, f"{path}{index}.", tolerated) for index, item in enumerate(value))
    return found


Decision.model_rebuild()
Envelope.model_rebuild()
