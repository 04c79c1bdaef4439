"""Every error the API returns: a 4xx (or, for our own faults, 5xx) JSON body
``{"reason": "<REASON_CODE>", "message": "<human sentence>"}``.

Domain errors carry their own reason code; this module only decides the HTTP
status for it, so the rule for "which status" lives in one place. Malformed
input is always a 422 and never reaches a handler; nothing a client sends may
produce a 500.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from registry.domain.errors import DomainError, ReasonCode
from registry.entrypoints.api.schemas import MALFORMED_IDENTIFIER_ERROR, TEXT_PATTERNS

log = structlog.get_logger(__name__)

# How many of pydantic's complaints one 422 message repeats; the rest are
# counted, not listed, so a body with a thousand bad items stays small.
VALIDATION_PROBLEMS_LISTED_MAX = 3


class ApiReason(StrEnum):
    """Reasons the API edge itself gives; the domain's own codes pass through unchanged."""

    MALFORMED_REQUEST = "MALFORMED_REQUEST"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    IDEMPOTENCY_KEY_IN_PROGRESS = "IDEMPOTENCY_KEY_IN_PROGRESS"
    DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
    INTERNAL_ERROR = "INTERNAL_ERROR"


class ErrorBody(BaseModel):
    """The body of every error response."""

    reason: str
    message: str


class ApiError(Exception):
    """An error decided at the API edge (auth, idempotency, malformed path values)."""

    def __init__(
        self,
        status_code: int,
        reason: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.reason = reason
        self.message = message
        self.headers = dict(headers or {})


def error_response(
    status_code: int, reason: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = ErrorBody(reason=str(reason), message=message).model_dump()
    return JSONResponse(status_code=status_code, content=body, headers=dict(headers or {}))


# Reasons the domain gives for input that is well-formed JSON but says
# something impossible (a zero quantity, a serial range turned around) are a
# 422 like any other malformed request; UNKNOWN_* lookups are a 404; every
# other reason is a conflict with the ledger's current state: 409.
_UNPROCESSABLE_REASONS = frozenset(
    {
        ReasonCode.MALFORMED_IDENTIFIER,
        ReasonCode.MALFORMED_BLOCK,
        ReasonCode.MALFORMED_TEXT,
        ReasonCode.NON_POSITIVE_QUANTITY,
        ReasonCode.BATCH_TOO_LARGE,
        ReasonCode.SAME_ACCOUNT,
        ReasonCode.SAME_PARTY,
        ReasonCode.INVALID_OMGE_SHARE,
        ReasonCode.INVALID_TIMEFRAME,
        ReasonCode.MISSING_FIRST_TRANSFER_DEFINITION,
        # An NDC configuration the domain cannot use (registry.domain.ndc.check_ndc).
        ReasonCode.NDC_INVALID_PERIOD,
        ReasonCode.NDC_INVALID_TARGET_YEAR,
        ReasonCode.NDC_METHOD_MISMATCH,
        ReasonCode.NDC_NO_METRIC,
        ReasonCode.NDC_LEVEL_OUT_OF_SCOPE,
        ReasonCode.NDC_TRAJECTORY_INCOMPLETE,
    }
)


_QUANTITY_FIELDS = frozenset({"quantity", "quantity_cap"})


# Not named UNKNOWN_*, but said of a missing LoA the request names: a 404.
_NOT_FOUND_REASONS = frozenset({ReasonCode.NO_AUTHORISATION, ReasonCode.NDC_NOT_CONFIGURED})


def status_for_reason(reason: str) -> int:
    """The HTTP status of a domain reason code: 404 unknown, 422 impossible, 409 conflict."""
    if reason.startswith("UNKNOWN_") or reason in _NOT_FOUND_REASONS:
        return 404
    if reason in _UNPROCESSABLE_REASONS:
        return 422
    return 409


def validation_reason(error: RequestValidationError) -> str:
    """The domain's own code when the first problem is one it names, else MALFORMED_REQUEST.

    Every string pattern in the request schemas is an identifier's, except the
    ones that keep control characters out of names and texts (MALFORMED_TEXT);
    a quantity field's lower bound is zero, so a client sees the same code
    whether the API or the domain caught the mistake.
    """
    details = error.errors()
    if not details:
        return ApiReason.MALFORMED_REQUEST
    first = details[0]
    if first.get("type") == "string_pattern_mismatch":
        pattern = (first.get("ctx") or {}).get("pattern")
        return (
            ReasonCode.MALFORMED_TEXT
            if pattern in TEXT_PATTERNS
            else ReasonCode.MALFORMED_IDENTIFIER
        )
    if first.get("type") == MALFORMED_IDENTIFIER_ERROR:
        return ReasonCode.MALFORMED_IDENTIFIER
    field = str(first.get("loc", ("",))[-1])
    if first.get("type") == "greater_than" and field in _QUANTITY_FIELDS:
        return ReasonCode.NON_POSITIVE_QUANTITY
    return ApiReason.MALFORMED_REQUEST


def describe_validation_error(error: RequestValidationError) -> str:
    problems = []
    for detail in error.errors()[:VALIDATION_PROBLEMS_LISTED_MAX]:
        location = ".".join(str(part) for part in detail.get("loc", ()) if part != "body")
        message = str(detail.get("msg", "is invalid")).removeprefix("Value error, ")
        problems.append(f"{location or 'body'}: {message}")
    remaining = len(error.errors()) - len(problems)
    suffix = f" (and {remaining} more)" if remaining > 0 else ""
    return "; ".join(problems) + suffix


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception reaching the edge to the one error body shape."""

    async def on_api_error(_: Request, error: Exception) -> JSONResponse:
        if not isinstance(error, ApiError):
            raise error
        return error_response(error.status_code, error.reason, error.message, error.headers)

    async def on_domain_error(_: Request, error: Exception) -> JSONResponse:
        if not isinstance(error, DomainError):
            raise error
        return error_response(status_for_reason(error.reason), error.reason, error.message)

    async def on_validation_error(_: Request, error: Exception) -> JSONResponse:
        if not isinstance(error, RequestValidationError):
            raise error
        reason = validation_reason(error)
        return error_response(422, reason, describe_validation_error(error))

    async def on_http_error(_: Request, error: Exception) -> JSONResponse:
        if not isinstance(error, StarletteHTTPException):
            raise error
        reason = {
            404: ApiReason.NOT_FOUND,
            405: ApiReason.METHOD_NOT_ALLOWED,
            401: ApiReason.UNAUTHENTICATED,
            403: ApiReason.FORBIDDEN,
        }.get(error.status_code, ApiReason.MALFORMED_REQUEST)
        return error_response(
            error.status_code, reason, str(error.detail), getattr(error, "headers", None)
        )

    async def on_unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path, method=request.method)
        return error_response(
            500, ApiReason.INTERNAL_ERROR, "the node failed to handle this request; see its log"
        )

    handlers: dict[type[Exception], Callable[[Request, Exception], Any]] = {
        ApiError: on_api_error,
        DomainError: on_domain_error,
        RequestValidationError: on_validation_error,
        StarletteHTTPException: on_http_error,
        Exception: on_unexpected,
    }
    for error_type, handler in handlers.items():
        app.add_exception_handler(error_type, handler)
