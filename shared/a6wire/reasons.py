"""The one list of reason codes: every refusal, NO vote, quarantined record and error body.

A code is part of the public contract between Parties and operators: the wire
carries it in a NO vote and a quarantine row keeps it, the API answers with it,
and monitoring matches on it. It is therefore never renamed, and it is defined
here once, whoever raises it: the wire contract (a record that cannot be read or
verified), the transfer protocol, a node's messaging edge, its operator API, or
the ledger's
Article 6 rules. The groups below say who raises what; the ledger's codes are the
ones in none of the other groups.
"""

from __future__ import annotations

from enum import StrEnum


class ReasonCode(StrEnum):
    # -- The wire: a record that does not decode, or does not verify (a6wire.errors)
    MALFORMED_MESSAGE = "MALFORMED_MESSAGE"
    UNSUPPORTED_SCHEMA_VERSION = "UNSUPPORTED_SCHEMA_VERSION"
    UNKNOWN_SENDER = "UNKNOWN_SENDER"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    WRONG_ROLE = "WRONG_ROLE"
    RECORD_TOO_LARGE = "RECORD_TOO_LARGE"
    NOT_UTF8 = "NOT_UTF8"
    NOT_JSON = "NOT_JSON"
    NESTING_TOO_DEEP = "NESTING_TOO_DEEP"
    NUMBER_TOO_LONG = "NUMBER_TOO_LONG"
    DUPLICATE_KEY = "DUPLICATE_KEY"
    DATETIME_OUT_OF_RANGE = "DATETIME_OUT_OF_RANGE"
    # Signed with a key its member retired (a6wire.directory: a previous key past
    # its valid_until, judged at the receiver's clock on an inbox, at sent_at on a log).
    KEY_EXPIRED = "KEY_EXPIRED"
    # A value RFC 8785 cannot encode exactly (an integer beyond 2**53 - 1, a lone
    # surrogate): no implementation could reproduce the bytes a signature covers.
    NOT_CANONICALISABLE = "NOT_CANONICALISABLE"
    # A schema 2 envelope not written in the schema's one form (a datetime not in
    # UTC with Z, an uppercase UUID, a number as a string, a field left out).
    NOT_NORMAL_FORM = "NOT_NORMAL_FORM"

    # -- The transfer protocol (registry.protocol)
    # Why a node refuses or aborts a transfer.
    DEADLINE_PASSED = "DEADLINE_PASSED"
    DEADLINE_TOO_FAR = "DEADLINE_TOO_FAR"
    DECISION_TIMEOUT = "DECISION_TIMEOUT"
    TRANSFER_ALREADY_DECIDED = "TRANSFER_ALREADY_DECIDED"
    # Why a message was ignored (reported so the edge can log it; never applied).
    NOT_EXPECTED_IN_STATE = "NOT_EXPECTED_IN_STATE"
    DUPLICATE = "DUPLICATE"
    OTHER_TRANSFER = "OTHER_TRANSFER"
    NOT_NAMED = "NOT_NAMED"
    CONFLICTING_PREPARE = "CONFLICTING_PREPARE"
    PREPARE_DIGEST_MISMATCH = "PREPARE_DIGEST_MISMATCH"
    DECISION_ALREADY_WON = "DECISION_ALREADY_WON"
    OUTCOME_MISMATCH = "OUTCOME_MISMATCH"
    COMMIT_WITHOUT_LOCAL_YES = "COMMIT_WITHOUT_LOCAL_YES"
    # Why a decision record does not count (it neither wins nor blocks).
    NOT_A_DECISION = "NOT_A_DECISION"
    MISSING_YES_VOTE = "MISSING_YES_VOTE"
    INVALID_VOTE_EVIDENCE = "INVALID_VOTE_EVIDENCE"
    INVALID_PREPARE_EVIDENCE = "INVALID_PREPARE_EVIDENCE"

    # -- A node's transfer handlers and messaging edge
    UNKNOWN_PARTY = "UNKNOWN_PARTY"
    NOT_THIS_REGISTRY = "NOT_THIS_REGISTRY"
    MALFORMED_PREPARE = "MALFORMED_PREPARE"
    DECISION_ON_INBOX = "DECISION_ON_INBOX"
    UNIT_RECORD_MISPLACED = "UNIT_RECORD_MISPLACED"
    LEDGER_INVARIANT = "LEDGER_INVARIANT"
    UNDECODABLE = "UNDECODABLE"
    HANDLER_FAILED = "HANDLER_FAILED"
    # The federation directory lists the Party as SUSPENDED: no new transfer with it.
    MEMBER_SUSPENDED = "MEMBER_SUSPENDED"

    # -- The federation directory: why a node keeps its version (a6wire.directory)
    DIRECTORY_MALFORMED = "DIRECTORY_MALFORMED"
    DIRECTORY_NOT_NEWER = "DIRECTORY_NOT_NEWER"
    DIRECTORY_NOT_AUTHORISED = "DIRECTORY_NOT_AUTHORISED"

    # -- Custody: what the federation unit index says of a PREPARE's units (registry.domain.custody)
    # Part of the range was never announced as issued by the registry its
    # identifier names (or not with the stated vintage and metric, or more than once).
    UNITS_NOT_ISSUED = "UNITS_NOT_ISSUED"
    # The sending Party does not hold (all of) the range.
    UNITS_NOT_HELD_BY_SENDER = "UNITS_NOT_HELD_BY_SENDER"
    # Another Party also holds (part of) the range: the records contradict each other.
    UNITS_HELD_ELSEWHERE = "UNITS_HELD_ELSEWHERE"
    # The range was cancelled or used.
    UNITS_OUT_OF_CIRCULATION = "UNITS_OUT_OF_CIRCULATION"
    # The node's index had not read the logs up to their end within the wait.
    UNIT_INDEX_BEHIND = "UNIT_INDEX_BEHIND"

    # -- Reconciliation: what a Party's holdings snapshot and this node's records disagree
    # on (registry.domain.reconciliation). Findings, not refusals: nothing is refused
    # for them, they are reported for operators to investigate.
    # The snapshot's total of a group differs from what the unit index gives the Party.
    TOTALS_MISMATCH = "TOTALS_MISMATCH"
    # A range held by the Party per its snapshot and not per the index, or the reverse.
    RANGE_MISMATCH = "RANGE_MISMATCH"
    # A range the snapshot or the index puts at two holdings.
    DOUBLE_HOLDING = "DOUBLE_HOLDING"
    # A range the Party holds that no registry announced as issued.
    HELD_NOT_ISSUED = "HELD_NOT_ISSUED"
    # A transfer committed at one of its two sides and not at the other.
    TRANSFER_ONE_SIDED = "TRANSFER_ONE_SIDED"

    # -- A node's operator API, for what is not a ledger rule (registry.entrypoints.api)
    MALFORMED_REQUEST = "MALFORMED_REQUEST"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    IDEMPOTENCY_KEY_IN_PROGRESS = "IDEMPOTENCY_KEY_IN_PROGRESS"
    DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    MESSAGING_DISABLED = "MESSAGING_DISABLED"

    # -- The ledger: Article 6 rules (registry.domain)
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
    # First transfer at use or cancellation (registry.domain.first_transfer)
    FIRST_TRANSFER_NOTICE_UNDELIVERABLE = "FIRST_TRANSFER_NOTICE_UNDELIVERABLE"
    FIRST_TRANSFER_NOTICE_MISDIRECTED = "FIRST_TRANSFER_NOTICE_MISDIRECTED"
    FIRST_TRANSFER_NOTICE_NOT_OWN_UNITS = "FIRST_TRANSFER_NOTICE_NOT_OWN_UNITS"
    FIRST_TRANSFER_NOTICE_UNITS_NOT_SENT = "FIRST_TRANSFER_NOTICE_UNITS_NOT_SENT"
    FIRST_TRANSFER_NOT_AT_USE = "FIRST_TRANSFER_NOT_AT_USE"
    FIRST_TRANSFER_ALREADY_NOTICED = "FIRST_TRANSFER_ALREADY_NOTICED"
    FIRST_TRANSFER_PENDING_AT_USE = "FIRST_TRANSFER_PENDING_AT_USE"
    # Not a refusal: the units are still in an outgoing transfer here; retry later.
    FIRST_TRANSFER_NOTICE_EARLY = "FIRST_TRANSFER_NOTICE_EARLY"
    # The Party's NDC configuration (registry.domain.ndc)
    NDC_NOT_CONFIGURED = "NDC_NOT_CONFIGURED"
    NDC_INVALID_PERIOD = "NDC_INVALID_PERIOD"
    NDC_INVALID_TARGET_YEAR = "NDC_INVALID_TARGET_YEAR"
    NDC_METHOD_MISMATCH = "NDC_METHOD_MISMATCH"
    NDC_NO_METRIC = "NDC_NO_METRIC"
    NDC_LEVEL_OUT_OF_SCOPE = "NDC_LEVEL_OUT_OF_SCOPE"
    NDC_TRAJECTORY_INCOMPLETE = "NDC_TRAJECTORY_INCOMPLETE"


WIRE_REASON_CODES = frozenset(
    {
        ReasonCode.MALFORMED_MESSAGE,
        ReasonCode.UNSUPPORTED_SCHEMA_VERSION,
        ReasonCode.UNKNOWN_SENDER,
        ReasonCode.BAD_SIGNATURE,
        ReasonCode.WRONG_ROLE,
        ReasonCode.RECORD_TOO_LARGE,
        ReasonCode.NOT_UTF8,
        ReasonCode.NOT_JSON,
        ReasonCode.NESTING_TOO_DEEP,
        ReasonCode.NUMBER_TOO_LONG,
        ReasonCode.DUPLICATE_KEY,
        ReasonCode.DATETIME_OUT_OF_RANGE,
        ReasonCode.KEY_EXPIRED,
        ReasonCode.NOT_CANONICALISABLE,
        ReasonCode.NOT_NORMAL_FORM,
    }
)
PROTOCOL_REASON_CODES = frozenset(
    {
        ReasonCode.DEADLINE_PASSED,
        ReasonCode.DEADLINE_TOO_FAR,
        ReasonCode.DECISION_TIMEOUT,
        ReasonCode.TRANSFER_ALREADY_DECIDED,
        ReasonCode.NOT_EXPECTED_IN_STATE,
        ReasonCode.DUPLICATE,
        ReasonCode.OTHER_TRANSFER,
        ReasonCode.NOT_NAMED,
        ReasonCode.CONFLICTING_PREPARE,
        ReasonCode.PREPARE_DIGEST_MISMATCH,
        ReasonCode.DECISION_ALREADY_WON,
        ReasonCode.OUTCOME_MISMATCH,
        ReasonCode.COMMIT_WITHOUT_LOCAL_YES,
        ReasonCode.NOT_A_DECISION,
        ReasonCode.MISSING_YES_VOTE,
        ReasonCode.INVALID_VOTE_EVIDENCE,
        ReasonCode.INVALID_PREPARE_EVIDENCE,
    }
)
NODE_REASON_CODES = frozenset(
    {
        ReasonCode.UNKNOWN_PARTY,
        ReasonCode.NOT_THIS_REGISTRY,
        ReasonCode.MALFORMED_PREPARE,
        ReasonCode.DECISION_ON_INBOX,
        ReasonCode.UNIT_RECORD_MISPLACED,
        ReasonCode.LEDGER_INVARIANT,
        ReasonCode.UNDECODABLE,
        ReasonCode.HANDLER_FAILED,
        ReasonCode.MEMBER_SUSPENDED,
    }
)
DIRECTORY_REASON_CODES = frozenset(
    {
        ReasonCode.DIRECTORY_MALFORMED,
        ReasonCode.DIRECTORY_NOT_NEWER,
        ReasonCode.DIRECTORY_NOT_AUTHORISED,
    }
)
CUSTODY_REASON_CODES = frozenset(
    {
        ReasonCode.UNITS_NOT_ISSUED,
        ReasonCode.UNITS_NOT_HELD_BY_SENDER,
        ReasonCode.UNITS_HELD_ELSEWHERE,
        ReasonCode.UNITS_OUT_OF_CIRCULATION,
        ReasonCode.UNIT_INDEX_BEHIND,
    }
)
RECONCILIATION_REASON_CODES = frozenset(
    {
        ReasonCode.TOTALS_MISMATCH,
        ReasonCode.RANGE_MISMATCH,
        ReasonCode.DOUBLE_HOLDING,
        ReasonCode.HELD_NOT_ISSUED,
        ReasonCode.TRANSFER_ONE_SIDED,
    }
)
API_REASON_CODES = frozenset(
    {
        ReasonCode.MALFORMED_REQUEST,
        ReasonCode.UNAUTHENTICATED,
        ReasonCode.FORBIDDEN,
        ReasonCode.NOT_FOUND,
        ReasonCode.METHOD_NOT_ALLOWED,
        ReasonCode.IDEMPOTENCY_KEY_REUSED,
        ReasonCode.IDEMPOTENCY_KEY_IN_PROGRESS,
        ReasonCode.DATABASE_UNAVAILABLE,
        ReasonCode.INTERNAL_ERROR,
        ReasonCode.MESSAGING_DISABLED,
    }
)
# What the ledger's rules raise: every code no other part of the node raises.
LEDGER_REASON_CODES = (
    frozenset(ReasonCode)
    - WIRE_REASON_CODES
    - PROTOCOL_REASON_CODES
    - NODE_REASON_CODES
    - CUSTODY_REASON_CODES
    - RECONCILIATION_REASON_CODES
    - DIRECTORY_REASON_CODES
    - API_REASON_CODES
)

__all__ = [
    "API_REASON_CODES",
    "CUSTODY_REASON_CODES",
    "DIRECTORY_REASON_CODES",
    "LEDGER_REASON_CODES",
    "NODE_REASON_CODES",
    "PROTOCOL_REASON_CODES",
    "RECONCILIATION_REASON_CODES",
    "WIRE_REASON_CODES",
    "ReasonCode",
]
