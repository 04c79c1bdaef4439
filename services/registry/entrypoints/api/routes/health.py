"""``GET /v1/health``: is this node up, can it reach its database, is its outbox moving? No auth.

``status`` is ``degraded`` when any check fails, and ``reasons`` says which, one
sentence each (empty when ``ok``). An unreachable database answers 503, so that a
load balancer takes the node out of rotation; an outbox whose oldest unsent row
is older than ``Settings.outbox_stall_degraded_after_s`` (a broker outage, a stuck
relay) answers 200 with ``degraded``: the node still serves its own API, but its
cross-border messages are not leaving. The same age is the
``registry_outbox_oldest_unsent_age_seconds`` gauge of ``/metrics``.
"""

from __future__ import annotations

from typing import Literal

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError

from registry.adapters.messaging import MESSAGING_TABLES, oldest_unsent_age_s
from registry.adapters.messaging.outbox import utc_now
from registry.bootstrap import Node

log = structlog.get_logger(__name__)

router = APIRouter(tags=["health"])

REASON_DATABASE_UNREACHABLE = "the database is unreachable"


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    party: str
    registry_id: str
    database_reachable: bool
    reasons: list[str] = Field(default_factory=list)
    # Seconds the oldest unsent outbox row has waited; 0 when nothing waits,
    # null when the database could not tell.
    oldest_unsent_outbox_age_s: float | None = None


def outbox_stall_reason(age_s: float, bound_s: float) -> str | None:
    """The degraded reason for an outbox whose oldest unsent row is ``age_s`` old, if any."""
    if age_s <= bound_s:
        return None
    return (
        f"the oldest unsent outbox row has waited {age_s:.0f} s, "
        f"more than {bound_s:g} s: cross-border messages are not leaving"
    )


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "the database is unreachable"}},
)
def health(request: Request) -> JSONResponse:
    node: Node = request.app.state.node
    reasons: list[str] = []
    reachable = node.database_reachable()
    age_s: float | None = None
    if not reachable:
        reasons.append(REASON_DATABASE_UNREACHABLE)
    else:
        try:
            age_s = oldest_unsent_age_s(node.engine, MESSAGING_TABLES.outbox, utc_now())
        except SQLAlchemyError:
            log.warning("health: outbox age unavailable", exc_info=True)
        else:
            stalled = outbox_stall_reason(age_s, node.settings.outbox_stall_degraded_after_s)
            if stalled is not None:
                reasons.append(stalled)
    body = Health(
        status="degraded" if reasons else "ok",
        party=node.settings.party,
        registry_id=node.settings.registry_id,
        database_reachable=reachable,
        reasons=reasons,
        oldest_unsent_outbox_age_s=age_s,
    )
    # 503 lets a load balancer or orchestrator take the node out of rotation.
    return JSONResponse(status_code=200 if reachable else 503, content=body.model_dump())
