"""``GET /v1/health``: is this node up, and if not quite, why? No auth.

``status`` is ``ok`` when ``reasons`` is empty and ``degraded`` otherwise;
each reason is one short sentence that starts with the part it is about
(``database: ...``, ``messaging: ...``), so a monitor can match on the prefix.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from registry.bootstrap import Node

router = APIRouter(tags=["health"])

DATABASE_UNREACHABLE = "database: unreachable"
MESSAGING_NOT_CONNECTED = "messaging: not connected to the broker"


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    party: str
    registry_id: str
    database_reachable: bool
    reasons: list[str] = Field(
        default_factory=list, description="why the node is degraded; empty when ok"
    )


def _messaging_reasons(request: Request, node: Node) -> list[str]:
    """A node configured for transfers whose edge has not connected cannot move units."""
    if node.messaging is None:
        return []  # an API-only node: no broker to be connected to
    edge = getattr(request.app.state, "edge", None)
    if edge is None or not edge.connected:
        return [MESSAGING_NOT_CONNECTED]
    return []


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "degraded: see reasons"}},
)
def health(request: Request) -> JSONResponse:
    node: Node = request.app.state.node
    reachable = node.database_reachable()
    reasons: list[str] = []
    if not reachable:
        reasons.append(DATABASE_UNREACHABLE)
    reasons.extend(_messaging_reasons(request, node))
    body = Health(
        status="degraded" if reasons else "ok",
        party=node.settings.party,
        registry_id=node.settings.registry_id,
        database_reachable=reachable,
        reasons=reasons,
    )
    # 503 lets a load balancer or orchestrator take the node out of rotation.
    return JSONResponse(status_code=503 if reasons else 200, content=body.model_dump())
