"""``GET /v1/health``: is this node up, and if not quite, why? No auth.

``status`` is ``ok`` when ``reasons`` is empty and ``degraded`` otherwise;
each reason is one short sentence that starts with the part it is about
(``database: ...``, ``messaging: ...``, ``outbox: ...``), so a monitor can match
on the prefix. Only an unreachable database answers 503, so that a load balancer
takes the node out of rotation; a node without its broker, or whose oldest unsent
outbox row is older than ``Settings.outbox_stall_degraded_after_s`` (a broker
outage, a stuck relay), answers 200 with ``degraded``: it still serves its own
API, but its cross-border messages are not leaving. The outbox age is also the
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
    # Seconds the oldest unsent outbox row has waited; 0 when nothing waits,
    # null when the database could not tell.
    oldest_unsent_outbox_age_s: float | None = None
    # The federation directory version the node holds (0: the genesis file);
    # null for a node without a directory (API-only).
    directory_version: int | None = None


def _messaging_reasons(request: Request, node: Node) -> list[str]:
    """A node configured for transfers whose edge has not connected cannot move units."""
    if node.messaging is None:
        return []  # an API-only node: no broker to be connected to
    edge = getattr(request.app.state, "edge", None)
    if edge is None or not edge.connected:
        return [MESSAGING_NOT_CONNECTED]
    return []


def outbox_stall_reason(age_s: float, bound_s: float) -> str | None:
    """The degraded reason for an outbox whose oldest unsent row is ``age_s`` old, if any."""
    if age_s <= bound_s:
        return None
    return (
        f"outbox: the oldest unsent row has waited {age_s:.0f} s, "
        f"more than {bound_s:g} s: cross-border messages are not leaving"
    )


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "degraded: see reasons"}},
)
def health(request: Request) -> JSONResponse:
    node: Node = request.app.state.node
    reasons: list[str] = []
    reachable = node.database_reachable()
    age_s: float | None = None
    if not reachable:
        reasons.append(DATABASE_UNREACHABLE)
    else:
        try:
            age_s = oldest_unsent_age_s(node.engine, MESSAGING_TABLES.outbox, utc_now())
        except SQLAlchemyError:
            log.warning("health: outbox age unavailable", exc_info=True)
        else:
            stalled = outbox_stall_reason(age_s, node.settings.outbox_stall_degraded_after_s)
            if stalled is not None:
                reasons.append(stalled)
    reasons.extend(_messaging_reasons(request, node))
    body = Health(
        status="degraded" if reasons else "ok",
        party=node.settings.party,
        registry_id=node.settings.registry_id,
        database_reachable=reachable,
        reasons=reasons,
        oldest_unsent_outbox_age_s=age_s,
        directory_version=None if node.messaging is None else node.messaging.directory.version,
    )
    # 503 lets a load balancer or orchestrator take the node out of rotation.
    return JSONResponse(status_code=200 if reachable else 503, content=body.model_dump())
