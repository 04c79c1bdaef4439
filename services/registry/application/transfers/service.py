"""The cross-border transfer handlers: the pure protocol, the ledger and the outbox, wired.

Each public method is ONE unit of work (``tick`` is one per due transfer): the
protocol transition, its ledger effects (reserve, hold, finalise, release), the
new state, the winning decision, the outbox rows it causes and the inbox record
of the message that caused it all commit together or not at all. The machines
in ``registry.protocol`` decide; this module only asks the ledger, feeds the
answers in as plain values and performs the effects. The seeded simulator
(``tests/sim``) drives this same class over the in-memory unit of work.

- ``initiate_transfer``: the API's request; reserve (sender checks) and PREPARE.
- ``handle_inbox_envelope``: a verified PREPARE, VOTE or DONE from this node's inbox.
- ``handle_decision_record``: a record read from the decision topic, in partition order.
- ``tick``: deadlines and re-sends of the transfers whose timer is due.
- ``get_transfer_view`` / ``list_transfer_views``: queries.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from uuid import UUID

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import ValidationError

from a6wire.messages import (
    REASON_CODES_PER_MESSAGE_MAX,
    Decision,
    Done,
    Envelope,
    FirstTransferNotice,
    HoldingsSnapshot,
    MessageType,
    Prepare,
    UnitRecord,
    Vote,
)
from a6wire.signing import seal
from a6wire.topics import decision_key
from a6wire.verification import encode_envelope
from registry.application.commands import (
    ApplyFirstTransferNotice,
    CancelVoluntarily,
    FinaliseIncomingTransfer,
    FinaliseOutgoingTransfer,
    HoldIncomingTransfer,
    ReleaseIncomingTransfer,
    ReleaseOutgoingReservation,
    ReserveForTransfer,
    UseForOimp,
    ValidateIncomingTransfer,
)
from registry.application.handlers import (
    apply_first_transfer_notice,
    cancel_voluntarily,
    finalise_incoming_transfer,
    finalise_outgoing_transfer,
    hold_incoming_transfer,
    release_incoming_transfer,
    release_outgoing_reservation,
    reserve_for_transfer,
    use_for_oimp,
    validate_incoming_transfer,
)
from registry.application.ports import Clock
from registry.application.results import MovementResult, ReservationResult
from registry.application.transfers import wire_mapping
from registry.application.transfers.ports import (
    MessagePosition,
    TransferRecord,
    TransferStatus,
    TransferUnitOfWork,
)
from registry.application.transfers.records import (
    RefusedRequest,
    TransferView,
    record_of,
    refused_record,
)
from registry.domain.authorisations import AuthorisationRef, Purpose
from registry.domain.errors import DomainError, ReasonCode
from registry.domain.selection import UnitSelection
from registry.domain.transfers import TransferIdClaim, check_transfer_id_claims
from registry.protocol import coordinator, participant
from registry.protocol.arbiter import EnvelopeVerifier, TransferKey, names_party, read_decision
from registry.protocol.coordinator import CoordinatorState
from registry.protocol.effects import (
    AppendDecision,
    ApplyAbort,
    ApplyCommit,
    Effect,
    HoldIncoming,
    HoldOutgoing,
    Ignored,
    Report,
    Role,
    SendToInbox,
)
from registry.protocol.events import (
    DecisionRead,
    DoneReceived,
    Event,
    PrepareReceived,
    Tick,
    VoteReceived,
)
from registry.protocol.participant import ParticipantPhase, ParticipantState

_log = structlog.get_logger(__name__)

# What a transfer request may ask for as its deadline, in seconds from now. The
# default is what an operator gets without asking; the maximum stays below the
# participants' TRANSFER_DEADLINE_MAX so that no peer refuses it for that.
TRANSFER_DEADLINE_DEFAULT_S = 30
TRANSFER_DEADLINE_MIN_S = 1
TRANSFER_DEADLINE_MAX_S = 6 * 60 * 60
# One tick handles at most this many due transfers; the rest wait for the next.
TICK_TRANSFERS_MAX = 200
# Bounds of one list query.
LIST_LIMIT_DEFAULT = 100
LIST_LIMIT_MAX = 1_000


MESSAGE_ID_HEADER = "message_id"
MESSAGE_TYPE_HEADER = "message_type"


class KeySigner:
    """Seals payloads with this node's Ed25519 key and a fresh message id.

    The id is drawn once, here, inside the handler's transaction: the outbox row
    keeps the sealed bytes, so a republished row carries the same id and the
    receiver's inbox drops the copy.
    """

    def __init__(self, party: str, private_key: Ed25519PrivateKey) -> None:
        self._party = party
        self._private_key = private_key

    @property
    def party(self) -> str:
        return self._party

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._private_key.public_key()

    def use_key(self, private_key: Ed25519PrivateKey) -> None:
        """Sign from now on with ``private_key`` (a rotation the directory announced).

        Envelopes sealed before stay as they are in the outbox: peers accept the
        previous key until the deadline the directory gives it.
        """
        self._private_key = private_key

    def seal(
        self,
        payload: Prepare
        | Vote
        | Decision
        | Done
        | FirstTransferNotice
        | UnitRecord
        | HoldingsSnapshot,
        sent_at: datetime,
    ) -> Envelope:
        return seal(
            payload,
            sender_party=self._party,
            sent_at=sent_at,
            message_id=uuid.uuid4(),
            private_key=self._private_key,
        )


@dataclass(frozen=True)
class FederationView:
    """What the handlers need to know about the federation and its topics."""

    party: str
    registry_id: str
    # The registry id of a member Party, None for a Party outside the federation.
    registry_of: Callable[[str], str | None]
    inbox_topic_of: Callable[[str], str]
    decision_topic: str
    # Why no new transfer may involve a Party now (MEMBER_SUSPENDED), from the
    # directory version the node holds at that moment; nothing without a directory.
    member_refusals: Callable[[str], tuple[str, ...]] = lambda _party: ()


@dataclass(frozen=True, slots=True)
class InitiateTransfer:
    """The API's request to transfer units to another Party's registry."""

    transfer_id: UUID
    from_account_id: str
    to_party: str
    to_account_id: str
    selection: UnitSelection
    authorisation_id: str
    purpose: Purpose
    deadline_s: int = TRANSFER_DEADLINE_DEFAULT_S
    acquiring_entity: str | None = None


@dataclass(frozen=True, slots=True)
class InitiationOutcome:
    view: TransferView
    # True when this node's own ledger refused before any PREPARE left.
    refused: bool
    message: str = ""


class MessagingDisabledError(Exception):
    """The node runs without a federation directory and key (API-only mode)."""


class LedgerInvariantError(Exception):
    """The winning decision cannot be applied to this node's ledger: a broken invariant.

    Not transient: redelivering the message would fail the same way, so the edge
    logs it for an operator and moves on, and the transaction changed nothing.
    """


class NoticeEarlyError(Exception):
    """A first-transfer notice names units still in an outgoing transfer here.

    Transient: the using registry read the COMMIT first; once this node reads it
    too (the transfer is final here, invariant 5) the redelivered notice applies.
    """


class _Refusal(Exception):  # noqa: N818 - a control-flow signal, never leaves this module
    def __init__(self, reasons: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.reasons = reasons
        self.message = message


# Told after a commit that a transfer reached its outcome at this node:
# (transfer id, role, status, seconds from its first record here to the outcome).
TransferFinishedObserver = Callable[[UUID, str, str, float], None]


@dataclass
class _Transaction:
    """Per-transaction bookkeeping: outbox rows written, transfers that reached an outcome."""

    wrote_outbox: bool = False
    finished: list[tuple[UUID, str, str, float]] = field(default_factory=list)


class Transfers:
    """The transfer handlers of one node; see the module docstring."""

    def __init__(
        self,
        unit_of_work: Callable[[], TransferUnitOfWork],
        clock: Clock,
        signer: KeySigner | None,
        verify: EnvelopeVerifier,
        federation: FederationView,
        *,
        on_outbox_commit: Callable[[], None] | None = None,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock
        self._signer = signer
        self._verify = verify
        self.federation = federation
        # Set by the edge once it runs: pokes the relay after a commit with outbox rows.
        self.on_outbox_commit = on_outbox_commit
        # Set by the entrypoint that keeps metrics; told after each commit of a transfer
        # that reached its outcome (COMMITTED or ABORTED) at this node.
        self.on_transfer_finished: TransferFinishedObserver | None = None
        # Set by the entrypoint that runs the federation unit index: the custody
        # refusals of a PREPARE (registry.application.custody.UnitIndex.custody_refusals).
        self.custody_check: Callable[[Prepare], tuple[str, ...]] | None = None

    @property
    def party(self) -> str:
        return self.federation.party

    @property
    def can_send(self) -> bool:
        return self._signer is not None

    def _logger(self, transfer_id: UUID | str, message_type: str) -> structlog.BoundLogger:
        bound: structlog.BoundLogger = _log.bind(
            transfer_id=str(transfer_id), party=self.party, message_type=message_type
        )
        return bound

    def _commit(self, uow: TransferUnitOfWork, transaction: _Transaction) -> None:
        uow.commit()
        if transaction.wrote_outbox and self.on_outbox_commit is not None:
            self.on_outbox_commit()
        if self.on_transfer_finished is not None:
            for transfer_id, role, status, seconds in transaction.finished:
                self.on_transfer_finished(transfer_id, role, status, seconds)

    # -- the API's request --------------------------------------------------------------

    def initiate_transfer(self, request: InitiateTransfer) -> InitiationOutcome:
        """Reserve the units (sender checks 3-8, 10) and send the PREPARE, in one transaction.

        A repeated transfer id returns the first answer (check 1). A refusal by
        this node's own ledger is recorded as an ABORTED transfer that holds
        nothing, so that a GET shows it.
        """
        now = self._clock.now()
        key = TransferKey(request.transfer_id, self.party)
        log = self._logger(request.transfer_id, MessageType.PREPARE)
        transaction = _Transaction()
        uow = self._unit_of_work()
        with uow:
            existing = uow.transfers.get(key)
            if existing is not None:
                return InitiationOutcome(
                    TransferView(existing), refused=existing.state is None, message="repeat"
                )
            try:
                prepare = self._reserve_and_prepare(uow, request, now)
            except _Refusal as refusal:
                reasons = tuple(dict.fromkeys(refusal.reasons))
                record = refused_record(
                    RefusedRequest(
                        request.transfer_id,
                        self.party,
                        request.to_party,
                        request.from_account_id,
                        request.to_account_id,
                        request.selection.quantity,
                    ),
                    reasons,
                    now,
                )
                uow.transfers.put(record)
                self._commit(uow, transaction)
                log.info("transfer refused before PREPARE", reasons=list(reasons))
                return InitiationOutcome(
                    TransferView(record), refused=True, message=refusal.message
                )
            state, effects = coordinator.begin(prepare, (), now)
            self._perform(uow, Role.COORDINATOR, effects, now, transaction, log)
            record = record_of(state, now, None)
            uow.transfers.put(record)
            self._commit(uow, transaction)
        log.info("transfer initiated", quantity=prepare.quantity, to_party=request.to_party)
        return InitiationOutcome(TransferView(record), refused=False)

    def _reserve_and_prepare(
        self, uow: TransferUnitOfWork, request: InitiateTransfer, now: datetime
    ) -> Prepare:
        if not TRANSFER_DEADLINE_MIN_S <= request.deadline_s <= TRANSFER_DEADLINE_MAX_S:
            raise _Refusal(
                (ReasonCode.MALFORMED_IDENTIFIER,),
                f"deadline_s must be {TRANSFER_DEADLINE_MIN_S} to {TRANSFER_DEADLINE_MAX_S}",
            )
        claimed = self._claim_refusals(uow, TransferKey(request.transfer_id, self.party))
        if claimed:
            raise _Refusal(
                tuple(claimed), f"transfer id {request.transfer_id} is known here as another's"
            )
        to_registry_id = self.federation.registry_of(request.to_party)
        if to_registry_id is None and request.to_party != self.party:
            raise _Refusal(
                (ReasonCode.UNKNOWN_PARTY,), f"{request.to_party} is not a federation member"
            )
        suspended = self._membership_refusals(self.party, request.to_party)
        if suspended:
            raise _Refusal(suspended, "the federation directory suspends a Party of this transfer")
        # A savepoint: anything refused after the reservation also undoes it.
        with uow:
            try:
                reservation = reserve_for_transfer(
                    uow,
                    self._clock,
                    ReserveForTransfer(
                        transfer_id=str(request.transfer_id),
                        from_account_id=request.from_account_id,
                        selection=request.selection,
                        acquiring_party=request.to_party,
                        purpose=request.purpose,
                        acquiring_entity=request.acquiring_entity,
                        authorisation=AuthorisationRef(request.authorisation_id),
                    ),
                )
            except DomainError as error:
                raise _Refusal(tuple(error.reasons), error.message) from error
            prepare = self._prepare(
                uow, request, reservation, to_registry_id or "", now + _seconds(request.deadline_s)
            )
            uow.commit()
        return prepare

    def _prepare(
        self,
        uow: TransferUnitOfWork,
        request: InitiateTransfer,
        reservation: ReservationResult,
        to_registry_id: str,
        deadline: datetime,
    ) -> Prepare:
        try:
            blocks = tuple(wire_mapping.block_to_wire(spec) for spec in reservation.blocks)
        except wire_mapping.MappingError as error:
            raise _Refusal((error.reason,), str(error)) from error
        letters = {(b.first_transferring_party, b.authorisation_id) for b in blocks}
        if letters != {(letter[0], request.authorisation_id) for letter in letters} or (
            len(letters) != 1
        ):
            raise _Refusal(
                (ReasonCode.AUTHORISATION_MISMATCH,),
                f"the units picked carry the LoAs {sorted(letters)}, not only "
                f"{request.authorisation_id}; select one LoA's units by serial range",
            )
        ((authorising_party, authorisation_id),) = letters
        authorisation = uow.authorisations.current(authorising_party, authorisation_id)
        if authorisation is None:
            raise _Refusal((ReasonCode.NO_AUTHORISATION,), f"no LoA {authorisation_id}")
        try:
            return Prepare(
                transfer_id=request.transfer_id,
                coordinator_party=self.party,
                participants=(request.to_party,),
                from_registry_id=self.federation.registry_id,
                from_account_id=request.from_account_id,
                to_registry_id=to_registry_id,
                to_account_id=request.to_account_id,
                blocks=blocks,
                authorisation=wire_mapping.authorisation_to_wire(authorisation),
                purpose=request.purpose.value,
                deadline=deadline,
            )
        except (ValidationError, wire_mapping.MappingError) as error:
            raise _Refusal((ReasonCode.MALFORMED_PREPARE,), str(error)) from error

    # -- the inbox: PREPARE, VOTE, DONE ----------------------------------------------------

    def handle_inbox_envelope(
        self,
        envelope: Envelope,
        position: MessagePosition,
        custody_current: bool | None = None,
    ) -> None:
        """Apply one verified inbox message; a duplicate (by message id) changes nothing.

        ``custody_current`` says whether this node's unit index had read the unit
        log and the decision topic to their end (within a bounded wait, before this
        call) when a PREPARE came: True, the PREPARE's ranges are checked against it;
        False, the vote is NO with ``UNIT_INDEX_BEHIND``; None, this node keeps no
        index (``custody_check`` unset) and checks nothing beyond its own ledger.
        """
        payload = envelope.payload
        if isinstance(payload, UnitRecord | HoldingsSnapshot):
            raise TypeError(f"a {payload.type} record is not an inbox message")
        log = self._logger(envelope.transfer_id, envelope.message_type).bind(
            sender_party=envelope.sender_party, message_id=str(envelope.message_id)
        )
        if isinstance(payload, Decision):
            log.warning("a decision on the inbox topic is ignored; decisions use their topic")
            return
        if isinstance(payload, FirstTransferNotice):
            self._on_first_transfer_notice(envelope, payload, position, log)
            return
        now = self._clock.now()
        key = TransferKey(envelope.transfer_id, payload.coordinator_party)
        custody: tuple[str, ...] = ()
        if isinstance(payload, Prepare):
            # Read before the transfer's transaction opens, in a short one of its own.
            custody = self._custody_refusals(payload, custody_current)
        transaction = _Transaction()
        uow = self._unit_of_work()
        with uow:
            inbox_id = _inbox_id(envelope, key)
            if uow.inbox.seen_before(inbox_id):
                log.info("duplicate message ignored")
                return
            uow.inbox.record(inbox_id, position.topic, position.partition, position.offset)
            record = uow.transfers.get(key)
            if isinstance(payload, Prepare):
                self._on_prepare(uow, envelope, key, record, now, transaction, log, custody)
            else:
                self._on_answer(uow, envelope, record, now, transaction, log)
            self._commit(uow, transaction)

    def _on_first_transfer_notice(
        self,
        envelope: Envelope,
        payload: FirstTransferNotice,
        position: MessagePosition,
        log: structlog.BoundLogger,
    ) -> None:
        """Record the first transfer another registry's use or cancellation reported, once.

        Refused notices raise ``DomainError`` (the bus quarantines them); a notice
        that came before this node read its transfer's COMMIT raises
        ``NoticeEarlyError`` and is redelivered.
        """
        uow = self._unit_of_work()
        with uow:
            inbox_id = _inbox_id(envelope, TransferKey(payload.notice_id, envelope.sender_party))
            if uow.inbox.seen_before(inbox_id):
                log.info("duplicate message ignored")
                return
            uow.inbox.record(inbox_id, position.topic, position.partition, position.offset)
            notice = wire_mapping.notice_from_wire(payload, envelope.sender_party)
            try:
                result = apply_first_transfer_notice(
                    uow, self._clock, ApplyFirstTransferNotice(notice)
                )
            except DomainError as error:
                if error.reasons == (ReasonCode.FIRST_TRANSFER_NOTICE_EARLY,):
                    raise NoticeEarlyError(str(error)) from error
                raise
            self._commit(uow, _Transaction())
        log.info(
            "first transfer recorded on notice",
            quantity=result.quantity,
            authorisation_id=notice.authorisation_id,
            action=notice.action.value,
        )

    # -- uses and cancellations that may be a first transfer --------------------------------

    def retire_units(self, command: UseForOimp | CancelVoluntarily) -> MovementResult:
        """Use for OIMP or cancel voluntarily, with any first-transfer notice it causes.

        Where the units' LoA puts their first transfer at their use or cancellation
        and another Party authorised them, the signed notice to that Party is written
        to the outbox in the same transaction as the use (or nothing is written).
        """
        now = self._clock.now()
        transaction = _Transaction()
        uow = self._unit_of_work()
        with uow:
            deliverable = replace(command, notices_delivered=self._signer is not None)
            if isinstance(deliverable, UseForOimp):
                result = use_for_oimp(uow, self._clock, deliverable)
            else:
                result = cancel_voluntarily(uow, self._clock, deliverable)
            for notice in result.first_transfer_notices:
                if self.federation.registry_of(notice.authorising_party) is None:
                    raise DomainError(
                        ReasonCode.FIRST_TRANSFER_NOTICE_UNDELIVERABLE,
                        f"{notice.authorising_party}, whose LoA makes this use a first "
                        "transfer, is not a federation member to notify",
                    )
                try:
                    payload = wire_mapping.notice_to_wire(notice, self.federation.registry_id)
                except wire_mapping.MappingError as error:
                    raise DomainError(ReasonCode.MALFORMED_BLOCK, str(error)) from error
                topic = self.federation.inbox_topic_of(notice.authorising_party)
                self._send(uow, topic, payload, now)
                transaction.wrote_outbox = True
                self._logger(notice.notice_id, MessageType.FIRST_TRANSFER_NOTICE).info(
                    "first-transfer notice queued", to_party=notice.authorising_party
                )
            self._commit(uow, transaction)
        return result

    def _on_prepare(
        self,
        uow: TransferUnitOfWork,
        envelope: Envelope,
        key: TransferKey,
        record: TransferRecord | None,
        now: datetime,
        transaction: _Transaction,
        log: structlog.BoundLogger,
        custody: tuple[str, ...] = (),
    ) -> None:
        if key.coordinator_party == self.party or (
            record is not None and not isinstance(record.state, ParticipantState)
        ):
            log.warning("PREPARE for a transfer this node coordinates is ignored")
            return
        current = record.state if record is not None else None
        if not isinstance(current, ParticipantState):
            current = participant.initial(self.party, key.transfer_id, key.coordinator_party)
            winner = uow.decisions.winner(key)
            if winner is not None:
                # Decided before its PREPARE arrived: the late PREPARE is answered from
                # the decision at once, never validated or held.
                current, _ = participant.step(current, DecisionRead(winner, None), now)
        refusals: tuple[str, ...] = ()
        if current.phase is ParticipantPhase.UNKNOWN:
            refusals = _codes(
                (
                    *self._membership_refusals(key.coordinator_party, self.party),
                    *self._claim_refusals(uow, key),
                    *self._incoming_refusals(uow, envelope),
                    *custody,
                )
            )
            if custody:
                log.warning("custody check refused the PREPARE", reason_codes=list(custody))
        state, effects = participant.step(current, PrepareReceived(envelope, refusals), now)
        if any(isinstance(effect, HoldIncoming) for effect in effects):
            try:
                self._hold_incoming(uow, envelope)
            except DomainError as error:
                # The ledger changed its mind between validation and hold (it cannot in
                # one transaction, but the vote must follow the ledger whatever happens).
                state, effects = participant.step(
                    current, PrepareReceived(envelope, _codes(error.reasons)), now
                )
        self._perform(uow, Role.PARTICIPANT, effects, now, transaction, log)
        self._save(uow, state, now, record, transaction)

    def _membership_refusals(self, *parties: str) -> tuple[str, ...]:
        """A new transfer with a suspended member is refused; in-flight ones run to the end."""
        return _codes(code for party in parties for code in self.federation.member_refusals(party))

    def _custody_refusals(self, prepare: Prepare, current: bool | None) -> tuple[str, ...]:
        """PROTOCOL.md invariant 8: the sender's custody, from the federation's records."""
        if self.custody_check is None:
            return ()
        if not current:
            # Not waited for (None) counts as behind: the vote never skips custody.
            return (ReasonCode.UNIT_INDEX_BEHIND.value,)
        return self.custody_check(prepare)

    def _claim_refusals(self, uow: TransferUnitOfWork, key: TransferKey) -> list[ReasonCode]:
        """NO to a PREPARE whose id this node knows under another coordinator.

        The ledger refuses an id its reservations hold; this adds what only the
        protocol knows: a vote given, or a decision kept, under that id.
        """
        claims = [
            TransferIdClaim(record.coordinator_party, record.status is not TransferStatus.PENDING)
            for record in uow.transfers.find(key.transfer_id)
            if record.coordinator_party != key.coordinator_party
        ]
        return check_transfer_id_claims(key.coordinator_party, claims)

    def _incoming_refusals(self, uow: TransferUnitOfWork, envelope: Envelope) -> tuple[str, ...]:
        prepare = envelope.payload
        if not isinstance(prepare, Prepare):
            return (ReasonCode.MALFORMED_PREPARE,)
        if prepare.to_registry_id != self.federation.registry_id:
            return (ReasonCode.NOT_THIS_REGISTRY,)
        try:
            hold = self._incoming_command(prepare)
        except wire_mapping.MappingError as error:
            return (error.reason,)
        command = ValidateIncomingTransfer(
            transfer_id=hold.transfer_id,
            transferring_party=hold.transferring_party,
            to_account_id=hold.to_account_id,
            blocks=hold.blocks,
            authorisations=hold.authorisations,
            purpose=hold.purpose,
        )
        try:
            validation = validate_incoming_transfer(uow, self._clock, command)
        except DomainError as error:
            return _codes(error.reasons)
        return _codes(validation.reasons)

    def _incoming_command(self, prepare: Prepare) -> HoldIncomingTransfer:
        # The LoA is the first transferring Party's, whoever sends the units now.
        authorising = {block.first_transferring_party for block in prepare.blocks}
        if len(authorising) != 1:
            raise wire_mapping.MappingError(
                ReasonCode.AUTHORISATION_MISMATCH, "blocks of several LoAs"
            )
        authorisation = wire_mapping.authorisation_from_wire(
            prepare.authorisation, authorising.pop()
        )
        return HoldIncomingTransfer(
            transfer_id=str(prepare.transfer_id),
            transferring_party=prepare.coordinator_party,
            to_account_id=prepare.to_account_id,
            blocks=tuple(wire_mapping.block_from_wire(block) for block in prepare.blocks),
            authorisations=(authorisation,),
            purpose=wire_mapping.purpose_from_wire(prepare.purpose),
        )

    def _hold_incoming(self, uow: TransferUnitOfWork, envelope: Envelope) -> None:
        prepare = envelope.payload
        if not isinstance(prepare, Prepare):
            raise DomainError(ReasonCode.MALFORMED_BLOCK, "not a PREPARE")
        try:
            command = self._incoming_command(prepare)
        except wire_mapping.MappingError as error:
            raise DomainError(ReasonCode.MALFORMED_BLOCK, str(error)) from error
        hold_incoming_transfer(uow, self._clock, command)

    def _on_answer(
        self,
        uow: TransferUnitOfWork,
        envelope: Envelope,
        record: TransferRecord | None,
        now: datetime,
        transaction: _Transaction,
        log: structlog.BoundLogger,
    ) -> None:
        state = record.state if record is not None else None
        if not isinstance(state, CoordinatorState):
            log.info("answer for a transfer this node does not coordinate is ignored")
            return
        event: Event = (
            VoteReceived(envelope) if isinstance(envelope.payload, Vote) else DoneReceived(envelope)
        )
        new_state, effects = coordinator.step(state, event, now)
        self._perform(uow, Role.COORDINATOR, effects, now, transaction, log)
        self._save(uow, new_state, now, record, transaction)

    # -- the decision topic ------------------------------------------------------------------

    def handle_decision_record(self, envelope: Envelope, position: MessagePosition) -> None:
        """Judge one decision record in partition order; the first valid one per transfer wins.

        The winner of every transfer naming this Party is kept, even before its
        PREPARE arrived, so that a late PREPARE is refused at once.
        """
        log = self._logger(envelope.transfer_id, envelope.message_type).bind(
            sender_party=envelope.sender_party, message_id=str(envelope.message_id)
        )
        if not isinstance(envelope.payload, Decision):
            log.warning("a non-decision on the decision topic is ignored")
            return
        if not names_party(envelope, self.party):
            return  # another Parties' transfer: nothing here to apply or keep
        now = self._clock.now()
        key = TransferKey(envelope.transfer_id, envelope.payload.coordinator_party)
        transaction = _Transaction()
        uow = self._unit_of_work()
        read = read_decision(envelope, self._verify)
        if read.refusal is not None:
            # Judged before the dedupe: a record that does not count must not mark its
            # (possibly borrowed) message id as seen and so hide the genuine record.
            log.warning("decision does not count", reason_code=read.refusal)
            return
        with uow:
            inbox_id = _inbox_id(envelope, key)
            if uow.inbox.seen_before(inbox_id):
                log.info("duplicate decision record ignored")
                return
            uow.inbox.record(inbox_id, position.topic, position.partition, position.offset)
            if uow.decisions.winner(key) is not None:
                log.info("decision ignored", reason_code="DECISION_ALREADY_WON")
            else:
                uow.decisions.keep(key, envelope, now)
                log.info("decision won", outcome=envelope.payload.outcome.value)
                self._step_decision(uow, key, read, now, transaction, log)
            self._commit(uow, transaction)

    def _step_decision(
        self,
        uow: TransferUnitOfWork,
        key: TransferKey,
        read: DecisionRead,
        now: datetime,
        transaction: _Transaction,
        log: structlog.BoundLogger,
    ) -> None:
        record = uow.transfers.get(key)
        state = record.state if record is not None else None
        if isinstance(state, CoordinatorState):
            new_state: CoordinatorState | ParticipantState
            new_state, effects = coordinator.step(state, read, now)
            role = Role.COORDINATOR
        elif isinstance(state, ParticipantState):
            new_state, effects = participant.step(state, read, now)
            role = Role.PARTICIPANT
        elif record is None and key.coordinator_party != self.party:
            fresh = participant.initial(self.party, key.transfer_id, key.coordinator_party)
            new_state, effects = participant.step(fresh, read, now)
            role = Role.PARTICIPANT
        else:
            log.warning("decision for a transfer this node never announced is ignored")
            return
        self._perform(uow, role, effects, now, transaction, log)
        self._save(uow, new_state, now, record, transaction)

    # -- timers ------------------------------------------------------------------------------

    def tick(self, limit: int = TICK_TRANSFERS_MAX) -> int:
        """Deliver a Tick to every transfer whose timer is due; return how many changed."""
        now = self._clock.now()
        uow = self._unit_of_work()
        with uow:
            due = uow.transfers.due(now, limit)
        return sum(1 for key in due if self._tick_one(key))

    def _tick_one(self, key: TransferKey) -> bool:
        now = self._clock.now()
        transaction = _Transaction()
        uow = self._unit_of_work()
        with uow:
            record = uow.transfers.get(key)
            state = record.state if record is not None else None
            if state is None:
                return False
            log = self._logger(key.transfer_id, "TICK")
            new_state: CoordinatorState | ParticipantState
            if isinstance(state, CoordinatorState):
                new_state, effects = coordinator.step(state, Tick(), now)
                role = Role.COORDINATOR
            else:
                new_state, effects = participant.step(state, Tick(), now)
                role = Role.PARTICIPANT
            changed = new_state != state or bool(effects)
            self._perform(uow, role, effects, now, transaction, log)
            self._save(uow, new_state, now, record, transaction)
            self._commit(uow, transaction)
        return changed

    def knows_transfer(self, transfer_id: UUID, coordinator_party: str) -> bool:
        """Whether this node keeps a record of the transfer (it has voted or seen it decided)."""
        uow = self._unit_of_work()
        with uow:
            return uow.transfers.get(TransferKey(transfer_id, coordinator_party)) is not None

    def unfinished_count(self) -> int:
        """Transfers not completed at this node: what recovery resumes at start."""
        uow = self._unit_of_work()
        with uow:
            return len(uow.transfers.unfinished(LIST_LIMIT_MAX))

    # -- queries -----------------------------------------------------------------------------

    def get_transfer_view(self, transfer_id: UUID) -> TransferView | None:
        uow = self._unit_of_work()
        with uow:
            records = uow.transfers.find(transfer_id)
        if not records:
            return None
        # An id another Party also used for its own transfer: ours (as coordinator) first.
        mine = [record for record in records if record.coordinator_party == self.party]
        return TransferView((mine or records)[0])

    def list_transfer_views(
        self, status: TransferStatus | None = None, limit: int = LIST_LIMIT_DEFAULT
    ) -> list[TransferView]:
        uow = self._unit_of_work()
        with uow:
            records = uow.transfers.recent(status=status, limit=max(1, min(limit, LIST_LIMIT_MAX)))
        return [TransferView(record) for record in records]

    # -- effects -----------------------------------------------------------------------------

    def _save(
        self,
        uow: TransferUnitOfWork,
        state: CoordinatorState | ParticipantState,
        now: datetime,
        previous: TransferRecord | None,
        transaction: _Transaction,
    ) -> None:
        if isinstance(state, ParticipantState) and (
            state.phase is ParticipantPhase.UNKNOWN and state.winner is None
        ):
            return  # nothing learnt: an UNKNOWN record is never persisted
        if previous is not None and previous.state == state:
            return
        record = record_of(state, now, previous)
        uow.transfers.put(record)
        was_pending = previous is None or previous.status is TransferStatus.PENDING
        if was_pending and record.status is not TransferStatus.PENDING:
            seconds = max(0.0, (now - record.created_at).total_seconds())
            transaction.finished.append(
                (record.transfer_id, record.role.value, record.status.value, seconds)
            )

    def _perform(
        self,
        uow: TransferUnitOfWork,
        role: Role,
        effects: list[Effect],
        now: datetime,
        transaction: _Transaction,
        log: structlog.BoundLogger,
    ) -> None:
        for effect in effects:
            if isinstance(effect, SendToInbox):
                self._send(uow, self.federation.inbox_topic_of(effect.party), effect.payload, now)
                transaction.wrote_outbox = True
                log.info("message queued", to_party=effect.party, sent_type=effect.payload.type)
            elif isinstance(effect, AppendDecision):
                self._send(
                    uow, self.federation.decision_topic, self._with_evidence(effect, now), now
                )
                transaction.wrote_outbox = True
                log.info("decision queued", outcome=effect.decision.outcome.value)
            elif isinstance(effect, HoldOutgoing | HoldIncoming):
                # Done by the caller before the transition was accepted: reserve_for_transfer
                # (sender) and hold_incoming_transfer (receiver), in this same transaction.
                continue
            elif isinstance(effect, ApplyCommit | ApplyAbort):
                self._apply(uow, effect)
                outcome = "COMMIT" if isinstance(effect, ApplyCommit) else "ABORT"
                log.info("decision applied to the ledger", outcome=outcome, role=role.value)
            elif isinstance(effect, Report):
                log.info("transfer phase", phase=effect.phase, role=effect.role.value)
            elif isinstance(effect, Ignored):
                log.info("message ignored", reason_code=effect.reason_code, detail=effect.detail)

    def _with_evidence(self, effect: AppendDecision, now: datetime) -> Decision:
        """The decision with the coordinator's signed PREPARE embedded, for a COMMIT."""
        if effect.evidence is None or effect.decision.prepare is not None:
            return effect.decision
        if self._signer is None:
            raise MessagingDisabledError("this node has no key and directory: it cannot send")
        prepare = self._signer.seal(effect.evidence, now)
        return effect.decision.model_copy(update={"prepare": prepare})

    def _apply(self, uow: TransferUnitOfWork, effect: ApplyCommit | ApplyAbort) -> None:
        """Finalise or release this node's side; the ledger handlers are idempotent.

        The ledger finds the reservation by the full transfer key, so a decision is
        applied only to the reservation it was made for.
        """
        transfer_id = str(effect.transfer_id)
        coordinator_party = effect.coordinator_party
        coordinating = effect.role is Role.COORDINATOR
        if coordinating and coordinator_party != self.party:
            raise LedgerInvariantError(
                f"transfer {transfer_id}: a coordinator effect for {coordinator_party}'s transfer"
            )
        try:
            if isinstance(effect, ApplyCommit) and coordinating:
                finalise_outgoing_transfer(uow, self._clock, FinaliseOutgoingTransfer(transfer_id))
            elif isinstance(effect, ApplyCommit):
                finalise_incoming_transfer(
                    uow, self._clock, FinaliseIncomingTransfer(transfer_id, coordinator_party)
                )
            elif coordinating:
                release_outgoing_reservation(
                    uow, self._clock, ReleaseOutgoingReservation(transfer_id)
                )
            else:
                release_incoming_transfer(
                    uow, self._clock, ReleaseIncomingTransfer(transfer_id, coordinator_party)
                )
        except DomainError as error:
            # The protocol decided and the ledger cannot follow (e.g. a COMMIT for a
            # hold that was released): never half-apply; the edge logs and stops here.
            raise LedgerInvariantError(
                f"transfer {transfer_id}: the ledger refused the winning decision: {error}"
            ) from error

    def _send(
        self,
        uow: TransferUnitOfWork,
        topic: str,
        payload: Prepare | Vote | Decision | Done | FirstTransferNotice,
        now: datetime,
    ) -> None:
        if self._signer is None:
            raise MessagingDisabledError("this node has no key and directory: it cannot send")
        envelope = self._signer.seal(payload, now)
        key = (
            decision_key(str(payload.transfer_id))
            if isinstance(payload, Decision)
            else str(payload.transfer_id).encode("ascii")
        )
        uow.outbox.add(
            topic,
            key,
            encode_envelope(envelope),
            {
                MESSAGE_ID_HEADER: str(envelope.message_id),
                MESSAGE_TYPE_HEADER: envelope.message_type.value,
            },
        )


def _inbox_id(envelope: Envelope, key: TransferKey) -> str:
    """The dedupe key of a consumed message: its sender, its transfer's full key, its id.

    A message id is only its sender's promise of uniqueness, so another member
    could send its own record under an id it has seen; qualified by the (verified)
    sender and the transfer key, such a record never hides the genuine one.
    """
    sender = envelope.sender_party
    return f"{sender}:{key.coordinator_party}:{key.transfer_id}:{envelope.message_id}"


def _codes(reasons: Iterable[str]) -> tuple[str, ...]:
    """Reason codes as a vote may carry them: distinct, and no more than the wire allows."""
    return tuple(dict.fromkeys(str(reason) for reason in reasons))[:REASON_CODES_PER_MESSAGE_MAX]


def _seconds(value_s: int) -> timedelta:
    return timedelta(seconds=value_s)


__all__ = [
    "LIST_LIMIT_DEFAULT",
    "LIST_LIMIT_MAX",
    "TRANSFER_DEADLINE_DEFAULT_S",
    "TRANSFER_DEADLINE_MAX_S",
    "FederationView",
    "InitiateTransfer",
    "InitiationOutcome",
    "KeySigner",
    "LedgerInvariantError",
    "MessagingDisabledError",
    "NoticeEarlyError",
    "Transfers",
]
