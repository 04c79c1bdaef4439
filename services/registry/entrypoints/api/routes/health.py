"""``GET /v1/health``: is this node up and can it reach its database? No auth."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from registry.bootstrap import Node

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    party: str
    registry_id: str
    database_reachable: bool


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "the database is unreachable"}},
)
def health(request: Request) -> JSONResponse:
    node: Node = request.app.state.node
    reachable = node.database_reachable()
    body = Health(
        status="ok" if reachable else "degraded",
        party=node.settings.party,
        registry_id=node.settings.registry_id,
        database_reachable=reachable,
    )
    # 503 lets a load balancer or orchestrator take the node out of rotation.
    return JSONResponse(status_code=200 if reachable else 503, content=body.model_dump())
