"""One structured log line per request, carrying the node's Party and registry.

Written here rather than by uvicorn so every line has the same fields in the
same renderer as the rest of the node, and so the Authorization header and
request bodies (which carry tokens and account holders) are never logged.
"""

from __future__ import annotations

import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"
log = structlog.get_logger("registry.api.access")


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, party: str, registry_id: str) -> None:
        self.app = app
        self.party = party
        self.registry_id = registry_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        started_ns = time.monotonic_ns()
        status_code = 500

        async def send_with_request_id(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        with structlog.contextvars.bound_contextvars(
            request_id=request_id, party=self.party, registry_id=self.registry_id
        ):
            try:
                await self.app(scope, receive, send_with_request_id)
            finally:
                log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status_code,
                    duration_ms=(time.monotonic_ns() - started_ns) // 1_000_000,
                )
