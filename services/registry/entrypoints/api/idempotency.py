"""``Idempotency-Key`` on write requests: a repeat returns the first answer.

An operator whose connection drops after sending "issue 1,000,000 units"
cannot know whether the units were issued. With an ``Idempotency-Key`` the
operator simply sends the same request again: if the first one completed,
the node replays its status and body without running the command again; if
the key comes back with a different body, that is a client bug and the node
refuses it (409 ``IDEMPOTENCY_KEY_REUSED``) rather than guess which one was
meant.

This is ASGI middleware so that routes stay unaware of it. It engages only
for operators (the only role that writes): an unauthenticated or read-only
caller goes straight through to the route, which refuses it, so a stored
answer is never replayed to someone who could not have caused it.

Keys are scoped to the token that sent them, so two operators cannot
collide or read each other's answers. The first answer is stored after the
command's own transaction commits. While a key's first request runs, a
repeat reaching the same process gets 409 ``IDEMPOTENCY_KEY_IN_PROGRESS``.
A repeat reaching another process at that moment, or a crash between the
command's commit and the store, can still run a command twice; closing that
gap needs the record written inside the command's transaction (requested
from the application layer).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import anyio.to_thread
import structlog
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from a6wire.reasons import ReasonCode
from registry.application.ports import (
    Clock,
    IdempotencyKeyExists,
    IdempotencyRecord,
    UnitOfWork,
)
from registry.entrypoints.api.auth import Role, role_for_token
from registry.entrypoints.api.errors import error_response
from registry.settings import Settings

IDEMPOTENCY_HEADER = "idempotency-key"
REPLAYED_HEADER = "idempotent-replayed"
IDEMPOTENCY_KEY_LENGTH_MAX_CHARS = 200
# A request body larger than this is refused before it is buffered for the
# fingerprint; the largest legitimate body (an LoA with its entity list) is a
# few kilobytes.
REQUEST_BODY_SIZE_MAX_BYTES = 1024 * 1024
HTTP_SERVER_ERROR_MIN = 500
JSON_CONTENT_TYPE = "application/json"
# Enough of a SHA-256 to tell tokens apart (64 bits) without keeping the token.
PRINCIPAL_DIGEST_CHARS = 16
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_PATH_PREFIX = "/v1/"
log = structlog.get_logger(__name__)

# Printable ASCII without spaces: UUIDs, ULIDs and the like, nothing that
# could smuggle a control character into a log line.
_KEY_SHAPE = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: bytes
    content_type: str


@dataclass(frozen=True)
class KeyedRequest:
    """A write request carrying an Idempotency-Key, as the store sees it."""

    key: str
    principal: str
    method: str
    path: str
    fingerprint: str


@dataclass(frozen=True)
class Claimed:
    """The key is new: run the request, then ``finish`` or ``abandon``."""


@dataclass(frozen=True)
class Replay:
    response: StoredResponse


@dataclass(frozen=True)
class KeyReused:
    """The key was first used with a different request."""


@dataclass(frozen=True)
class InProgress:
    """The key's first request has not finished."""


ClaimOutcome = Claimed | Replay | KeyReused | InProgress


class IdempotencyStore(Protocol):
    """Where keys and their first answers live."""

    def claim(self, request: KeyedRequest) -> ClaimOutcome: ...

    def finish(self, request: KeyedRequest, response: StoredResponse) -> None: ...

    def abandon(self, request: KeyedRequest) -> None: ...


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    """A digest of what the request asks for; JSON key order and spacing do not count."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _bearer_token(headers: Headers) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def principal_for_token(token: str) -> str:
    """A stable name for the token's holder that does not store the token itself."""
    return "token:" + hashlib.sha256(token.encode()).hexdigest()[:PRINCIPAL_DIGEST_CHARS]


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings, store: IdempotencyStore) -> None:
        self.app = app
        self.settings = settings
        self.store = store
        # (principal, key) of requests running now. Only the event loop thread
        # touches it, between awaits, so it needs no lock.
        self._in_flight: set[tuple[str, str]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._applies(scope):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key = headers[IDEMPOTENCY_HEADER]
        if len(key) > IDEMPOTENCY_KEY_LENGTH_MAX_CHARS or not _KEY_SHAPE.fullmatch(key):
            await _refuse(
                scope,
                send,
                422,
                ReasonCode.MALFORMED_REQUEST,
                f"Idempotency-Key must be 1-{IDEMPOTENCY_KEY_LENGTH_MAX_CHARS} printable "
                "ASCII characters without spaces",
            )
            return
        token = _bearer_token(headers)
        if token is None or role_for_token(self.settings, token) is not Role.OPERATOR:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            await _refuse(
                scope,
                send,
                413,
                ReasonCode.MALFORMED_REQUEST,
                f"request body exceeds {REQUEST_BODY_SIZE_MAX_BYTES} bytes",
            )
            return
        method, path = str(scope["method"]), str(scope["path"])
        request = KeyedRequest(
            key=key,
            principal=principal_for_token(token),
            method=method,
            path=path,
            fingerprint=fingerprint(method, path, scope.get("query_string", b""), body),
        )
        await self._run_once(scope, send, request, body)

    def _applies(self, scope: Scope) -> bool:
        return (
            scope["type"] == "http"
            and scope["method"] in WRITE_METHODS
            and str(scope["path"]).startswith(API_PATH_PREFIX)
            and IDEMPOTENCY_HEADER in Headers(scope=scope)
        )

    async def _run_once(self, scope: Scope, send: Send, request: KeyedRequest, body: bytes) -> None:
        in_flight = (request.principal, request.key)
        if in_flight in self._in_flight:
            outcome: ClaimOutcome = InProgress()
        else:
            self._in_flight.add(in_flight)
            try:
                outcome = await anyio.to_thread.run_sync(self.store.claim, request)
                if isinstance(outcome, Claimed):
                    await self._run_and_store(scope, send, request, body)
                    return
            finally:
                self._in_flight.discard(in_flight)
        await self._answer_without_running(scope, send, outcome)

    async def _answer_without_running(
        self, scope: Scope, send: Send, outcome: ClaimOutcome
    ) -> None:
        if isinstance(outcome, Replay):
            await _send_stored(outcome.response, send)
        elif isinstance(outcome, KeyReused):
            await _refuse(
                scope,
                send,
                409,
                ReasonCode.IDEMPOTENCY_KEY_REUSED,
                "this Idempotency-Key was first used with a different request",
            )
        elif isinstance(outcome, InProgress):
            await _refuse(
                scope,
                send,
                409,
                ReasonCode.IDEMPOTENCY_KEY_IN_PROGRESS,
                "the first request with this Idempotency-Key has not finished; retry shortly",
            )

    async def _run_and_store(
        self, scope: Scope, send: Send, request: KeyedRequest, body: bytes
    ) -> None:
        captured = _CapturingSend(send)
        try:
            await self.app(scope, _replay_body(body), captured)
        except BaseException:
            await anyio.to_thread.run_sync(self.store.abandon, request)
            raise
        stored = captured.stored()
        # A 5xx is our fault, not the answer to the request: free the key for a retry.
        if stored is None or stored.status_code >= HTTP_SERVER_ERROR_MIN:
            await anyio.to_thread.run_sync(self.store.abandon, request)
        else:
            await anyio.to_thread.run_sync(self.store.finish, request, stored)


async def _refuse(scope: Scope, send: Send, status_code: int, reason: str, message: str) -> None:
    response = error_response(status_code, reason, message)
    await response(scope, _replay_body(b""), send)


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size_bytes = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size_bytes += len(chunk)
        if size_bytes > REQUEST_BODY_SIZE_MAX_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay_body(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _send_stored(response: StoredResponse, send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": [
                (b"content-type", response.content_type.encode()),
                (b"content-length", str(len(response.body)).encode()),
                (REPLAYED_HEADER.encode(), b"true"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": response.body, "more_body": False})


class _CapturingSend:
    """Passes the response through to the client while keeping a copy to store."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._status_code: int | None = None
        self._content_type = "application/json"
        self._chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._status_code = int(message["status"])
            headers = Headers(raw=message.get("headers", []))
            self._content_type = headers.get("content-type", self._content_type)
        elif message["type"] == "http.response.body":
            self._chunks.append(message.get("body", b""))
        await self._send(message)

    def stored(self) -> StoredResponse | None:
        if self._status_code is None:
            return None
        return StoredResponse(self._status_code, b"".join(self._chunks), self._content_type)


class UnitOfWorkIdempotencyStore:
    """The store over the unit of work's idempotency repository.

    That repository keeps only finished answers, so a claim is "no answer
    yet" and abandoning needs no write; see the module docstring for the gap
    this leaves.
    """

    def __init__(self, unit_of_work: Callable[[], UnitOfWork], clock: Clock) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock

    def claim(self, request: KeyedRequest) -> ClaimOutcome:
        with self._unit_of_work() as uow:
            record = uow.idempotency.get(request.key, request.principal)
        if record is None:
            return Claimed()
        if (record.method, record.path, record.request_fingerprint) != (
            request.method,
            request.path,
            request.fingerprint,
        ):
            return KeyReused()
        body = json.dumps(record.response_body, separators=(",", ":")).encode()
        return Replay(StoredResponse(record.response_status, body, JSON_CONTENT_TYPE))

    def finish(self, request: KeyedRequest, response: StoredResponse) -> None:
        try:
            body = json.loads(response.body) if response.body else None
        except ValueError:
            log.warning("not storing a non-JSON answer", path=request.path)
            return
        record = IdempotencyRecord(
            idempotency_key=request.key,
            principal=request.principal,
            method=request.method,
            path=request.path,
            request_fingerprint=request.fingerprint,
            response_status=response.status_code,
            response_body=body,
            created_at=self._clock.now(),
        )
        try:
            with self._unit_of_work() as uow:
                uow.idempotency.put(record)
                uow.commit()
        except IdempotencyKeyExists:
            # A concurrent request with the same key finished first; its answer stands.
            log.warning("idempotency key stored concurrently", path=request.path)

    def abandon(self, request: KeyedRequest) -> None:
        """Nothing was written for the claim, so there is nothing to undo."""
