"""The FastAPI application factory: ``create_app(node)``."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from registry.bootstrap import Node
from registry.entrypoints.api.access_log import AccessLogMiddleware
from registry.entrypoints.api.errors import ErrorBody, install_error_handlers
from registry.entrypoints.api.idempotency import IdempotencyMiddleware, UnitOfWorkIdempotencyStore
from registry.entrypoints.api.reports import router as reports_router
from registry.entrypoints.api.routes import (
    accounts,
    approaches,
    audit,
    authorisations,
    health,
    movements,
    registry,
    transparency,
)
from registry.entrypoints.metrics import install_metrics
from registry.entrypoints.public import router as public_router

API_VERSION_PREFIX = "/v1"
API_TITLE = "Article 6.2 registry node: operator API"

_ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorBody} for status in (401, 403, 404, 409, 422)
}


def create_app(node: Node) -> FastAPI:
    """An API bound to one node; tests build several apps over several nodes."""
    app = FastAPI(
        title=f"{API_TITLE} ({node.settings.registry_id})",
        version="1",
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.node = node
    install_error_handlers(app)
    app.add_middleware(
        IdempotencyMiddleware,
        settings=node.settings,
        store=UnitOfWorkIdempotencyStore(node.unit_of_work, node.clock),
    )
    # Added last, so it wraps everything: replays and refusals are logged too.
    app.add_middleware(
        AccessLogMiddleware, party=node.settings.party, registry_id=node.settings.registry_id
    )
    version_1 = APIRouter(prefix=API_VERSION_PREFIX, responses=_ERROR_RESPONSES)
    for family in (
        health,
        registry,
        accounts,
        approaches,
        authorisations,
        movements,
        transparency,
        audit,
    ):
        version_1.include_router(family.router)
    version_1.include_router(reports_router)
    app.include_router(version_1)
    app.include_router(public_router)
    # Last, so request counting wraps every other middleware and sees every answer.
    install_metrics(app, node.engine)
    return app
