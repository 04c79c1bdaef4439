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

The key is claimed in its own transaction before the command runs and the
answer stored after; a crash in between leaves the claim in progress, and a
repeat then gets 409 ``IDEMPOTENCY_KEY_IN_PROGRESS`` instead of a second
execution: the operator checks the audit trail rather than risk issuing twice.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Protocol

import anyio.to_thread
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry.bootstrap import Node
from registry.entrypoints.api.auth import Role, role_for_token
from registry.entrypoints.api.errors import ApiReason, error_response
from registry.settings import Settings

IDEMPOTENCY_HEADER = "idempotency-key"
REPLAYED_HEADER = "idempotent-replayed"
IDEMPOTENCY_KEY_LENGTH_MAX_CHARS = 200
# A request body larger than this is refused before it is buffered for the
# fingerprint; the largest legitimate body (an LoA with its entity list) is a
# few kilobytes.
REQUEST_BODY_SIZE_MAX_BYTES = 1024 * 1024
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_PATH_PREFIX = "/v1/"
# Printable ASCII without spaces: UUIDs, ULIDs and the like, nothing that
# could smuggle a control character into a log line.
_KEY_SHAPE = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: bytes
    content_type: str


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
    """The key's first request has not finished (or its node crashed mid-way)."""


ClaimOutcome = Claimed | Replay | KeyReused | InProgress


class IdempotencyStore(Protocol):
    """Where keys and their first answers live; the composition root provides it."""

    def claim(self, key: str, fingerprint: str) -> ClaimOutcome: ...

    def finish(self, key: str, response: StoredResponse) -> None: ...

    def abandon(self, key: str) -> None: ...


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


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings, store: IdempotencyStore) -> None:
        self.app = app
        self.settings = settings
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._applies(scope):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key = headers[IDEMPOTENCY_HEADER]
        if len(key) > IDEMPOTENCY_KEY_LENGTH_MAX_CHARS or not _KEY_SHAPE.fullmatch(key):
            response = error_response(
                422,
                ApiReason.MALFORMED_REQUEST,
                f"Idempotency-Key must be 1-{IDEMPOTENCY_KEY_LENGTH_MAX_CHARS} printable "
                "ASCII characters without spaces",
            )
            await response(scope, receive, send)
            return
        if role_for_token(self.settings, _bearer_token(headers)) is not Role.OPERATOR:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            response = error_response(
                413,
                ApiReason.MALFORMED_REQUEST,
                f"request body exceeds {REQUEST_BODY_SIZE_MAX_BYTES} bytes",
            )
            await response(scope, receive, send)
            return
        await self._run_once(scope, send, key, body)

    def _applies(self, scope: Scope) -> bool:
        return (
            scope["type"] == "http"
            and scope["method"] in WRITE_METHODS
            and str(scope["path"]).startswith(API_PATH_PREFIX)
            and IDEMPOTENCY_HEADER in Headers(scope=scope)
        )

    async def _run_once(self, scope: Scope, send: Send, key: str, body: bytes) -> None:
        request_fingerprint = fingerprint(
            scope["method"], scope["path"], scope.get("query_string", b""), body
        )
        outcome = await anyio.to_thread.run_sync(self.store.claim, key, request_fingerprint)
        if isinstance(outcome, Replay):
            await _send_stored(outcome.response, send)
            return
        if isinstance(outcome, KeyReused):
            response = error_response(
                409,
                ApiReason.IDEMPOTENCY_KEY_REUSED,
                "this Idempotency-Key was first used with a different request",
            )
            await response(scope, _replay_body(body), send)
            return
        if isinstance(outcome, InProgress):
            response = error_response(
                409,
                ApiReason.IDEMPOTENCY_KEY_IN_PROGRESS,
                "the first request with this Idempotency-Key has not finished; "
                "check the audit trail before retrying with a new key",
            )
            await response(scope, _replay_body(body), send)
            return
        await self._run_and_store(scope, send, key, body)

    async def _run_and_store(self, scope: Scope, send: Send, key: str, body: bytes) -> None:
        captured = _CapturingSend(send)
        try:
            await self.app(scope, _replay_body(body), captured)
        except BaseException:
            await anyio.to_thread.run_sync(self.store.abandon, key)
            raise
        stored = captured.stored()
        # A 5xx is our fault, not the client's answer: free the key for a retry.
        if stored is None or stored.status_code >= 500:
            await anyio.to_thread.run_sync(self.store.abandon, key)
        else:
            await anyio.to_thread.run_sync(self.store.finish, key, stored)


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


class _UnavailableStore:
    """Placeholder until the unit of work's idempotency repository lands."""

    def claim(self, key: str, fingerprint: str) -> ClaimOutcome:
        raise NotImplementedError

    def finish(self, key: str, response: StoredResponse) -> None:
        raise NotImplementedError

    def abandon(self, key: str) -> None:
        raise NotImplementedError


def node_idempotency_store(node: Node) -> IdempotencyStore:
    return _UnavailableStore()
