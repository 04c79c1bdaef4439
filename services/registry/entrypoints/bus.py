"""The Kafka entrypoint of the transfer protocol: thin subscribers over the handlers.

Each subscriber decodes the record's bytes into an ``a6wire`` envelope, checks
it, and calls ONE handler, which records the message id in the inbox table in
the same transaction as its effect. A message that can never apply (bytes
that do not decode, an unknown sender, a bad signature, a sender in the wrong
role, an unknown schema version) is logged with its reason and transfer id and
acknowledged: redelivering it would fail the same way forever and block its
partition. Only a transient failure (the database is unreachable, two
consumers raced on one message) is raised, so the edge does not commit the
offset and the record comes back.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import structlog
from sqlalchemy.exc import SQLAlchemyError

from a6wire.directory import FederationDirectory
from a6wire.errors import WireError
from a6wire.messages import Decision, Envelope
from a6wire.verification import decode_envelope, verify_envelope
from registry.adapters.messaging import MessagingError, RawKafkaRecord
from registry.application.transfers import LedgerInvariantError, MessagePosition, Transfers
from registry.domain.errors import DomainError

_log = structlog.get_logger(__name__)

# Failures after which a retry can succeed: the record is redelivered.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, MessagingError)


def _transfer_id_of(data: bytes) -> str | None:
    """Best effort, for the log line of a refused message only."""
    try:
        raw = json.loads(data)
    except ValueError:
        return None
    value = raw.get("transfer_id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) else None


class TransferBus:
    """The inbox and decision subscribers' handlers of one node."""

    def __init__(self, transfers: Transfers, directory: FederationDirectory) -> None:
        self._transfers = transfers
        self._directory = directory

    @property
    def party(self) -> str:
        return self._transfers.party

    def accept_inbox(self, data: bytes) -> Envelope | None:
        """The verified envelope, or None (logged) for a message that must never apply."""
        try:
            envelope = decode_envelope(data)
            verify_envelope(envelope, self._directory)
        except WireError as error:
            _log.warning(
                "inbox message refused",
                reason_code=error.reason_code,
                detail=str(error)[:200],
                transfer_id=_transfer_id_of(data),
                party=self.party,
                message_type=None,
            )
            return None
        if isinstance(envelope.payload, Decision):
            _log.warning(
                "inbox message refused",
                reason_code="DECISION_ON_INBOX",
                transfer_id=str(envelope.transfer_id),
                party=self.party,
                message_type=envelope.message_type.value,
            )
            return None
        return envelope

    def accept_decision(self, data: bytes) -> Envelope | None:
        """The decoded record; its signature and evidence are judged by the arbiter."""
        try:
            envelope = decode_envelope(data)
        except WireError as error:
            _log.warning(
                "decision record refused",
                reason_code=error.reason_code,
                detail=str(error)[:200],
                transfer_id=_transfer_id_of(data),
                party=self.party,
                message_type=None,
            )
            return None
        return envelope

    def handle_inbox_bytes(self, data: bytes, position: MessagePosition) -> None:
        """Synchronous core of the inbox subscriber (also what the unit tests drive)."""
        envelope = self.accept_inbox(data)
        if envelope is None:
            return
        self._guarded(self._transfers.handle_inbox_envelope, envelope, position, decision=False)

    def handle_decision_bytes(self, data: bytes, position: MessagePosition) -> None:
        envelope = self.accept_decision(data)
        if envelope is None:
            return
        self._guarded(self._transfers.handle_decision_record, envelope, position, decision=True)

    def _guarded(
        self,
        handler: Callable[[Envelope, MessagePosition], None],
        envelope: Envelope,
        position: MessagePosition,
        *,
        decision: bool,
    ) -> None:
        log = _log.bind(
            transfer_id=str(envelope.transfer_id),
            party=self.party,
            message_type=envelope.message_type.value,
            message_id=str(envelope.message_id),
        )
        try:
            handler(envelope, position)
        except TRANSIENT_ERRORS:
            raise
        except (LedgerInvariantError, DomainError, WireError) as error:
            # Deterministic: the same record would fail the same way on every retry.
            log.error("message could not be applied; acknowledged", error=str(error)[:500])
        except Exception:
            if decision:
                # The decision log is the arbiter: skipping a record could make this
                # node pick another winner than everyone else. Redeliver instead.
                log.exception("decision handler failed; the record will be redelivered")
                raise
            # An inbox message is re-sent by its coordinator (PREPARE) or answered
            # again (VOTE, DONE), so acknowledging a poisoned one loses nothing.
            log.exception("inbox handler failed; acknowledged")

    async def on_inbox(self, record: RawKafkaRecord) -> None:
        position = MessagePosition(record.topic, record.partition, record.offset)
        await asyncio.to_thread(self.handle_inbox_bytes, record.value, position)

    async def on_decision(self, record: RawKafkaRecord) -> None:
        position = MessagePosition(record.topic, record.partition, record.offset)
        await asyncio.to_thread(self.handle_decision_bytes, record.value, position)
