"""The registry ledger's handlers: one function per command, each in one unit of work.

Every handler has the signature ``handler(uow, clock, command) -> result`` and
raises :class:`registry.domain.errors.DomainError` (``.reason``, ``.reasons``,
``.message``) when a rule refuses the command; nothing is written then.
``handle(uow, clock, command)`` dispatches any command to its handler.

Reference data
- ``initialise_registry``: record the Party and registry id, open the four retirement accounts.
- ``set_transfer_freeze``: start or lift the registry-wide transfer freeze.
- ``open_account``: open a holding (or other) account for the Party or an entity.
- ``change_account_status``: suspend, reopen or close (an empty holding) account.
- ``register_cooperative_approach``: record an approach this Party takes part in.
- ``record_authorisation``: record a new version of one of this Party's LoAs.
- ``revoke_authorisation``: record the revocation as a new LoA version.
- ``set_ndc_configuration``: record a new version of the Party's NDC (type, period, CA method).

Units inside this registry
- ``issue_units``: issue a batch of blocks with fresh serials; first transfer at issuance
  when the LoA defines it so (adds the corresponding adjustment).
- ``transfer_internally``: move units between two accounts of this registry.
- ``use_towards_ndc``: retire units towards the NDC (an ITMO subtracts, for the year of use).
- ``use_for_oimp``: retire units for OIMP (first transfer here if the LoA says use_or_cancellation).
- ``cancel_voluntarily``: cancel units voluntarily (same first-transfer rule as OIMP).
- ``cancel_for_omge``: cancel units into the OMGE account, for good.

Cross-border, sender side
- ``reserve_for_transfer``: checks 3-8 and 10, lock the units and the OMGE share.
- ``finalise_outgoing_transfer``: debit, first transfer + adjustment, cancel the OMGE share.
- ``release_outgoing_reservation``: unlock the units and the cap after an abort.

Cross-border, receiver side
- ``validate_incoming_transfer``: reason codes for a "no" vote (none means yes).
- ``hold_incoming_transfer``: validate again and record pending credit.
- ``finalise_incoming_transfer``: make the held blocks holdings (acquisition, no adjustment).
- ``release_incoming_transfer``: drop the pending credit after an abort.

Queries (``handler(uow, clock, ...)``, read-only)
- ``get_registry_node``, ``get_account``, ``list_accounts``, ``account_blocks``,
  ``account_balance``, ``list_cooperative_approaches``, ``authorisation_history``,
  ``ledger_totals``, ``adjustment_balance``, ``adjustments_for_party``, ``audit_trail``,
  ``get_transfer``, ``pending_transfers``, ``current_authorisations``, ``holdings_totals``
  (per approach, vintage and metric, summed by the store), ``report_source`` (what the
  AEF of one year is built from), ``ndc_configuration`` (the current NDC),
  ``ca_summary`` (the adjustments per year and metric by the NDC's method).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from registry.application._admin import (
    change_account_status,
    initialise_registry,
    open_account,
    record_authorisation,
    register_cooperative_approach,
    revoke_authorisation,
    set_ndc_configuration,
    set_transfer_freeze,
)
from registry.application._incoming import (
    INCOMING_BLOCKS_PER_TRANSFER_MAX,
    finalise_incoming_transfer,
    hold_incoming_transfer,
    release_incoming_transfer,
    validate_incoming_transfer,
)
from registry.application._movements import (
    ISSUANCE_LINES_PER_COMMAND_MAX,
    cancel_for_omge,
    cancel_voluntarily,
    issue_units,
    transfer_internally,
    use_for_oimp,
    use_towards_ndc,
)
from registry.application._outgoing import (
    finalise_outgoing_transfer,
    release_outgoing_reservation,
    reserve_for_transfer,
)
from registry.application._queries import (
    account_balance,
    account_blocks,
    adjustment_balance,
    adjustments_for_party,
    audit_trail,
    authorisation_history,
    ca_summary,
    current_authorisations,
    get_account,
    get_registry_node,
    get_transfer,
    holdings_totals,
    ledger_totals,
    list_accounts,
    list_cooperative_approaches,
    ndc_configuration,
    pending_transfers,
    report_source,
)
from registry.application.commands import (
    CancelForOmge,
    CancelVoluntarily,
    ChangeAccountStatus,
    Command,
    FinaliseIncomingTransfer,
    FinaliseOutgoingTransfer,
    HoldIncomingTransfer,
    InitialiseRegistry,
    IssueUnits,
    OpenAccount,
    RecordAuthorisation,
    RegisterCooperativeApproach,
    ReleaseIncomingTransfer,
    ReleaseOutgoingReservation,
    ReserveForTransfer,
    RevokeAuthorisation,
    SetNdcConfiguration,
    SetTransferFreeze,
    TransferInternally,
    UseForOimp,
    UseTowardsNdc,
    ValidateIncomingTransfer,
)
from registry.application.ports import Clock, UnitOfWork

HANDLERS: dict[type[Any], Callable[[UnitOfWork, Clock, Any], Any]] = {
    InitialiseRegistry: initialise_registry,
    SetTransferFreeze: set_transfer_freeze,
    OpenAccount: open_account,
    ChangeAccountStatus: change_account_status,
    RegisterCooperativeApproach: register_cooperative_approach,
    RecordAuthorisation: record_authorisation,
    RevokeAuthorisation: revoke_authorisation,
    IssueUnits: issue_units,
    TransferInternally: transfer_internally,
    UseTowardsNdc: use_towards_ndc,
    UseForOimp: use_for_oimp,
    CancelVoluntarily: cancel_voluntarily,
    CancelForOmge: cancel_for_omge,
    ReserveForTransfer: reserve_for_transfer,
    FinaliseOutgoingTransfer: finalise_outgoing_transfer,
    ReleaseOutgoingReservation: release_outgoing_reservation,
    ValidateIncomingTransfer: validate_incoming_transfer,
    HoldIncomingTransfer: hold_incoming_transfer,
    FinaliseIncomingTransfer: finalise_incoming_transfer,
    ReleaseIncomingTransfer: release_incoming_transfer,
    SetNdcConfiguration: set_ndc_configuration,
}


def handle(uow: UnitOfWork, clock: Clock, command: Command) -> Any:
    """Run the handler registered for the command's type."""
    return HANDLERS[type(command)](uow, clock, command)


__all__ = [
    "HANDLERS",
    "INCOMING_BLOCKS_PER_TRANSFER_MAX",
    "ISSUANCE_LINES_PER_COMMAND_MAX",
    "account_balance",
    "account_blocks",
    "adjustment_balance",
    "adjustments_for_party",
    "audit_trail",
    "authorisation_history",
    "ca_summary",
    "cancel_for_omge",
    "cancel_voluntarily",
    "change_account_status",
    "current_authorisations",
    "finalise_incoming_transfer",
    "finalise_outgoing_transfer",
    "get_account",
    "get_registry_node",
    "get_transfer",
    "handle",
    "hold_incoming_transfer",
    "holdings_totals",
    "initialise_registry",
    "issue_units",
    "ledger_totals",
    "list_accounts",
    "list_cooperative_approaches",
    "ndc_configuration",
    "open_account",
    "pending_transfers",
    "record_authorisation",
    "register_cooperative_approach",
    "release_incoming_transfer",
    "release_outgoing_reservation",
    "report_source",
    "reserve_for_transfer",
    "revoke_authorisation",
    "set_ndc_configuration",
    "set_transfer_freeze",
    "transfer_internally",
    "use_for_oimp",
    "use_towards_ndc",
    "validate_incoming_transfer",
]
