"""Cross-border transfers: start one, read one, list them; and the Kafka contract (AsyncAPI).

``POST /v1/transfers`` answers 202 with the transfer's view once the PREPARE
is committed to the outbox; ``wait_s`` waits (bounded) for a final status at
this node. A refusal by this node's own ledger, before any PREPARE left, is a
409 (422 for an impossible request) carrying every reason code, and the
transfer is recorded ABORTED so that a GET shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import Field, Strict

from registry.adapters.messaging import MessagingConfig, build_node_broker
from registry.application.transfers import (
    LIST_LIMIT_DEFAULT,
    LIST_LIMIT_MAX,
    TRANSFER_DEADLINE_DEFAULT_S,
    TRANSFER_DEADLINE_MAX_S,
    TRANSFER_DEADLINE_MIN_S,
    InitiateTransfer,
    Transfers,
    TransferStatus,
)
from registry.domain.authorisations import Purpose
from registry.entrypoints.api.auth import Operator, Reader
from registry.entrypoints.api.dependencies import NodeDep
from registry.entrypoints.api.errors import ApiError, ApiReason, ErrorBody, status_for_reason
from registry.entrypoints.api.schemas import AccountId, AuthorisationId, PartyCode, SelectsUnits

router = APIRouter(tags=["transfers"])

# How long POST may wait for a final status. The wait wakes when this process
# commits the outcome; the fallback interval bounds it should a wake-up be missed.
TRANSFER_WAIT_MAX_S = 60.0
TRANSFER_WAIT_FALLBACK_POLL_S = 1.0
MESSAGING_DISABLED = "MESSAGING_DISABLED"


class TransferIn(SelectsUnits):
    """Units to move to another Party's registry (``quantity`` or an identifier range)."""

    transfer_id: UUID | None = Field(default=None, description="chosen by the caller to retry")
    from_account_id: AccountId
    to_party: PartyCode = Field(description="ISO 3166 alpha-3, e.g. CHE")
    to_account_id: AccountId
    authorisation_id: AuthorisationId
    purpose: Purpose
    deadline_s: Annotated[int, Strict()] = Field(
        default=TRANSFER_DEADLINE_DEFAULT_S, ge=TRANSFER_DEADLINE_MIN_S, le=TRANSFER_DEADLINE_MAX_S
    )


def _not_found(transfer_id: UUID) -> ApiError:
    return ApiError(404, ApiReason.NOT_FOUND, f"no transfer {transfer_id} at this node")


class OutcomeWaiters:
    """Wakes ``POST /v1/transfers?wait_s=N`` callers when their transfer reaches an outcome.

    The transfer service reports outcomes after its commits, from worker threads;
    ``notify`` must therefore be called on the event loop that owns the events
    (``loop.call_soon_threadsafe``).
    """

    def __init__(self) -> None:
        self._events: dict[UUID, tuple[asyncio.Event, int]] = {}

    def register(self, transfer_id: UUID) -> asyncio.Event:
        event, count = self._events.get(transfer_id, (asyncio.Event(), 0))
        self._events[transfer_id] = (event, count + 1)
        return event

    def release(self, transfer_id: UUID) -> None:
        event, count = self._events[transfer_id]
        if count <= 1:
            del self._events[transfer_id]
        else:
            self._events[transfer_id] = (event, count - 1)

    def notify(self, transfer_id: UUID) -> None:
        entry = self._events.get(transfer_id)
        if entry is not None:
            entry[0].set()


@router.post(
    "/transfers",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        503: {"model": ErrorBody, "description": "this node has no federation directory or key"}
    },
)
async def start_transfer(
    body: TransferIn,
    node: NodeDep,
    _: Operator,
    http_request: Request,
    wait_s: Annotated[float, Query(ge=0, le=TRANSFER_WAIT_MAX_S)] = 0,
) -> JSONResponse:
    transfers = node.transfers
    if node.messaging is None or not transfers.can_send:
        raise ApiError(
            503,
            MESSAGING_DISABLED,
            "this node has no federation directory and key: it cannot start transfers",
        )
    request = InitiateTransfer(
        transfer_id=body.transfer_id or uuid4(),
        from_account_id=body.from_account_id,
        to_party=body.to_party,
        to_account_id=body.to_account_id,
        selection=body.selection(),
        authorisation_id=body.authorisation_id,
        purpose=body.purpose,
        deadline_s=body.deadline_s,
    )
    outcome = await run_in_threadpool(transfers.initiate_transfer, request)
    view = outcome.view.to_dict()
    if outcome.refused:
        reasons = view["reasons"] or [ApiReason.MALFORMED_REQUEST]
        code = 422 if status_for_reason(reasons[0]) == 422 else 409
        return JSONResponse(
            status_code=code,
            content={
                "reason": reasons[0],
                "message": outcome.message or "the transfer is refused",
                "reasons": reasons,
                "transfer_id": view["transfer_id"],
            },
        )
    if wait_s > 0:
        waiters: OutcomeWaiters = http_request.app.state.outcome_waiters
        view = await _wait_for_final(transfers, waiters, request.transfer_id, wait_s) or view
    return JSONResponse(status_code=202, content=view)


async def _wait_for_final(
    transfers: Transfers, waiters: OutcomeWaiters, transfer_id: UUID, wait_s: float
) -> dict[str, Any] | None:
    deadline = time.monotonic() + min(wait_s, TRANSFER_WAIT_MAX_S)
    latest: dict[str, Any] | None = None
    # Registered before the first read, so an outcome committed after it always wakes us.
    event = waiters.register(transfer_id)
    try:
        while True:
            event.clear()
            view = await run_in_threadpool(transfers.get_transfer_view, transfer_id)
            latest = view.to_dict() if view is not None else latest
            if latest is not None and latest["status"] != TransferStatus.PENDING:
                return latest
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                return latest
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    event.wait(), timeout=min(remaining_s, TRANSFER_WAIT_FALLBACK_POLL_S)
                )
    finally:
        waiters.release(transfer_id)


@router.get("/transfers/{transfer_id}")
async def get_transfer(transfer_id: UUID, node: NodeDep, _: Reader) -> dict[str, Any]:
    view = await run_in_threadpool(node.transfers.get_transfer_view, transfer_id)
    if view is None:
        raise _not_found(transfer_id)
    return view.to_dict()


@router.get("/transfers")
async def list_transfers(
    node: NodeDep,
    _: Reader,
    status: Annotated[
        Literal["PENDING", "COMMITTED", "ABORTED"] | None, Query(alias="status")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=LIST_LIMIT_MAX)] = LIST_LIMIT_DEFAULT,
) -> dict[str, Any]:
    wanted = TransferStatus(status) if status is not None else None
    views = await run_in_threadpool(node.transfers.list_transfer_views, wanted, limit)
    return {"items": [view.to_dict() for view in views]}


def _specification(request: Request) -> Any:
    """FastStream's AsyncAPI specification of this node's Kafka subscribers (cached)."""
    cached = getattr(request.app.state, "asyncapi_specification", None)
    if cached is not None:
        return cached
    from faststream.specification import AsyncAPI

    node = request.app.state.node
    edge = getattr(request.app.state, "edge", None)
    if edge is not None:
        broker = edge.broker
    else:
        # API-only mode: the same subscribers, built but never started, describe the contract.
        async def _never(_: Any) -> None:
            return None

        config = MessagingConfig.from_settings(node.settings)
        broker, _, _ = build_node_broker(config, handle_inbox=_never, handle_decision=_never)
    specification = AsyncAPI(
        broker,
        title=f"Article 6.2 registry node {node.settings.registry_id}: Kafka contract",
        version="1",
        description=(
            "Signed a6wire envelopes (schema version 1): PREPARE, VOTE and DONE on each "
            "node's inbox topic, DECISION records on the shared decision topic keyed by "
            "transfer id. See shared/a6wire/messages.py and PROTOCOL.md."
        ),
    ).to_specification()
    request.app.state.asyncapi_specification = specification
    return specification


@router.get("/asyncapi.json", include_in_schema=False)
def asyncapi_document(request: Request) -> Response:
    return Response(_specification(request).to_json(), media_type="application/json")


@router.get("/asyncapi", include_in_schema=False)
def asyncapi_page(request: Request) -> HTMLResponse:
    from faststream.specification.asyncapi.site import get_asyncapi_html

    return HTMLResponse(get_asyncapi_html(_specification(request)))
