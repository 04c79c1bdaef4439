"""Bearer-token authentication and the three roles of the operator API.

Operators write and read; auditors read everything; the public sees only the
transparency subset Article 6 asks Parties to publish (holdings totals per
cooperative approach and vintage, the corresponding-adjustment ledger,
authorisations) and never an account holder. Tokens come from settings.

A request without a token is the public; a request with a token we do not
know is refused outright (401) even on public endpoints, so that a client
with a mistyped token learns it at once instead of silently seeing less.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from registry.entrypoints.api.errors import ApiError, ApiReason
from registry.settings import Settings


class Role(StrEnum):
    OPERATOR = "operator"
    AUDITOR = "auditor"
    PUBLIC = "public"


@dataclass(frozen=True)
class Principal:
    role: Role

    @property
    def may_write(self) -> bool:
        return self.role is Role.OPERATOR

    @property
    def may_read_everything(self) -> bool:
        return self.role in (Role.OPERATOR, Role.AUDITOR)


def _matches_any(token: str, known: list[str]) -> bool:
    # compare_digest on every candidate, without short-circuit, so the time
    # taken does not reveal how close a guess came or which list matched.
    found = False
    for candidate in known:
        found |= hmac.compare_digest(token.encode(), candidate.encode())
    return found


def role_for_token(settings: Settings, token: str | None) -> Role | None:
    """The role a bearer token grants; PUBLIC without a token; None for an unknown token."""
    if token is None:
        return Role.PUBLIC
    if _matches_any(token, settings.operator_tokens):
        return Role.OPERATOR
    if _matches_any(token, settings.auditor_tokens):
        return Role.AUDITOR
    return None


def _unauthenticated(message: str) -> ApiError:
    # RFC 6750: a 401 names the scheme the client should use.
    return ApiError(401, ApiReason.UNAUTHENTICATED, message, {"WWW-Authenticate": "Bearer"})


_bearer = HTTPBearer(auto_error=False, description="an operator or auditor token")


def _principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    settings: Settings = request.app.state.node.settings
    role = role_for_token(settings, credentials.credentials if credentials else None)
    if role is None:
        raise _unauthenticated("the bearer token is not known to this node")
    return Principal(role)


def public_reader(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    """Anyone, including a caller with no token: the transparency subset."""
    return principal


def reader(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    """Operators and auditors: every read, including account holders."""
    if principal.role is Role.PUBLIC:
        raise _unauthenticated("this endpoint needs a bearer token")
    if not principal.may_read_everything:
        raise ApiError(403, ApiReason.FORBIDDEN, f"the {principal.role} role may not read this")
    return principal


def operator(principal: Annotated[Principal, Depends(reader)]) -> Principal:
    """Operators only: every change to the ledger."""
    if not principal.may_write:
        raise ApiError(403, ApiReason.FORBIDDEN, f"the {principal.role} role may not write")
    return principal


# For a public route's OpenAPI operation: FastAPI lists the bearer scheme as its
# security; this adds the empty requirement ({}), "or no token at all".
ANONYMOUS_ALLOWED: dict[str, Any] = {"security": [{}]}

PublicReader = Annotated[Principal, Depends(public_reader)]
Reader = Annotated[Principal, Depends(reader)]
Operator = Annotated[Principal, Depends(operator)]
