"""Cross-border transfers: the protocol machines wired to the ledger and the outbox.

See ``service`` for the handlers and ``ports`` for what they need from adapters.
"""

from registry.application.transfers.ports import (
    REFUSED_BEFORE_PREPARE_PHASE,
    BlockSummary,
    DecisionRepository,
    EnvelopeSigner,
    InboxPort,
    MessagePosition,
    OutboxPort,
    TransferRecord,
    TransferStateRepository,
    TransferStatus,
    TransferUnitOfWork,
)
from registry.application.transfers.records import TransferView
from registry.application.transfers.service import (
    LIST_LIMIT_DEFAULT,
    LIST_LIMIT_MAX,
    MESSAGE_ID_HEADER,
    TICK_TRANSFERS_MAX,
    TRANSFER_DEADLINE_DEFAULT_S,
    TRANSFER_DEADLINE_MAX_S,
    TRANSFER_DEADLINE_MIN_S,
    FederationView,
    InitiateTransfer,
    InitiationOutcome,
    KeySigner,
    LedgerInvariantError,
    MessagingDisabledError,
    NoticeEarlyError,
    Transfers,
)

__all__ = [
    "LIST_LIMIT_DEFAULT",
    "LIST_LIMIT_MAX",
    "MESSAGE_ID_HEADER",
    "REFUSED_BEFORE_PREPARE_PHASE",
    "TICK_TRANSFERS_MAX",
    "TRANSFER_DEADLINE_DEFAULT_S",
    "TRANSFER_DEADLINE_MAX_S",
    "TRANSFER_DEADLINE_MIN_S",
    "BlockSummary",
    "DecisionRepository",
    "EnvelopeSigner",
    "FederationView",
    "InboxPort",
    "InitiateTransfer",
    "InitiationOutcome",
    "KeySigner",
    "LedgerInvariantError",
    "MessagePosition",
    "MessagingDisabledError",
    "NoticeEarlyError",
    "OutboxPort",
    "TransferRecord",
    "TransferStateRepository",
    "TransferStatus",
    "TransferUnitOfWork",
    "TransferView",
    "Transfers",
]
