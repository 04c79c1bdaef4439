"""The FastAPI application factory: ``create_app(node)``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from uuid import UUID

import structlog
from fastapi import APIRouter, FastAPI

from registry.adapters.messaging import SqlQuarantine, UnitIndexHandlers
from registry.application.transfers import Transfers
from registry.bootstrap import Node
from registry.entrypoints.api import transfers as transfer_routes
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
    ndc,
    registry,
    transparency,
)
from registry.entrypoints.api.routes import custody as custody_routes
from registry.entrypoints.api.routes import reconciliation as reconciliation_routes
from registry.entrypoints.bus import SnapshotBus, TransferBus, UnitIndexBus
from registry.entrypoints.custody import IndexCatchUp
from registry.entrypoints.metrics import Metrics, install_metrics
from registry.entrypoints.public import router as public_router
from registry.entrypoints.reconciliation import ReconciliationLoops

log = structlog.get_logger(__name__)

API_VERSION_PREFIX = "/v1"
# How often the node delivers a Tick to transfers whose timer is due (deadlines,
# re-sends); well under PREPARE_RESEND_INTERVAL_MS so re-sends happen on time.
TRANSFER_TICK_INTERVAL_S = 0.5
API_TITLE = "Article 6.2 registry node: operator API"

# Every route may answer these with the one error body; 400 is a body that is not
# even text (bytes that are not UTF-8), 422 one that does not fit the schema.
_ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorBody} for status in (400, 401, 403, 404, 409, 422)
}


def create_app(node: Node) -> FastAPI:
    """An API bound to one node; tests build several apps over several nodes."""
    app = FastAPI(
        title=f"{API_TITLE} ({node.settings.registry_id})",
        version="1",
        docs_url="/docs",
        openapi_url="/openapi.json",
        lifespan=_transfer_lifespan(node),
    )
    app.state.node = node
    app.state.outcome_waiters = transfer_routes.OutcomeWaiters()
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
        ndc,
        transparency,
        audit,
        transfer_routes,
    ):
        version_1.include_router(family.router)
    version_1.include_router(reports_router)
    version_1.include_router(custody_routes.router)
    version_1.include_router(reconciliation_routes.router)
    app.include_router(version_1)
    app.include_router(public_router)
    # Last, so request counting wraps every other middleware and sees every answer.
    install_metrics(app, node.engine)
    return app


def _transfer_lifespan(
    node: Node,
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """Start the Kafka edge and the ticker with the app when the node has messaging.

    Recovery is the edge's start: the relay's first pass republishes every unsent
    outbox row, both consumer groups resume from their committed offsets (so a
    PREPARED transfer reads its decision partition), and the ticker resumes every
    transfer whose timer is due from the database, where all protocol state lives.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        messaging, transfers = node.messaging, node.transfers
        if messaging is None or transfers is None:
            yield
            return
        metrics, waiters = app.state.metrics, app.state.outcome_waiters
        bus = TransferBus(
            transfers,
            messaging.directory.current,
            SqlQuarantine(messaging.engine),
            on_quarantined=metrics.record_quarantined,
            now=node.clock.now,
            directory_behind=messaging.directory.is_behind,
        )
        index_handlers, catch_up = _unit_index_wiring(node, bus, metrics)
        reconciliation = messaging.reconciliation if catch_up is not None else None
        snapshot_bus = (
            None
            if reconciliation is None
            else SnapshotBus(
                reconciliation,
                messaging.directory.current,
                SqlQuarantine(messaging.engine),
                party=node.settings.party,
                on_quarantined=metrics.record_quarantined,
                directory_behind=messaging.directory.is_behind,
            )
        )
        edge = messaging.build_edge(
            handle_inbox=bus.on_inbox,
            handle_decision=bus.on_decision,
            unit_index=index_handlers,
            handle_snapshot=None if snapshot_bus is None else snapshot_bus.on_snapshot,
        )
        loop = asyncio.get_running_loop()

        def notify_relay() -> None:
            # Handlers commit in worker threads; the relay's event lives on this loop.
            loop.call_soon_threadsafe(edge.notify)

        def transfer_finished(transfer_id: UUID, role: str, status: str, seconds: float) -> None:
            metrics.transfer_finished(role, status, seconds)
            loop.call_soon_threadsafe(waiters.notify, transfer_id)

        transfers.on_outbox_commit = notify_relay
        transfers.on_transfer_finished = transfer_finished
        if messaging.unit_log is not None:
            messaging.unit_log.on_commit = notify_relay
        if catch_up is not None:
            catch_up.bind(edge.unit_index_end_offsets)
            await catch_up.load()
            app.state.unit_index_catch_up = catch_up
        # The API serves whether or not the broker answers yet: transfers started
        # meanwhile wait in the outbox, and /v1/health reports the node degraded
        # until the edge has connected (it retries in the background).
        app.state.edge = edge

        async def connect() -> None:
            try:
                await edge.start_until_connected()
            except Exception:
                # Not a broker outage but a defect no retry fixes: stay up, degraded.
                log.exception("transfer messaging cannot start", party=node.settings.party)
                return
            unfinished = await asyncio.to_thread(transfers.unfinished_count)
            log.info("transfer messaging started", party=node.settings.party, unfinished=unfinished)

        connecting = asyncio.create_task(connect(), name="messaging-connect")
        ticker = asyncio.create_task(_tick_forever(transfers))
        tasks = [ticker, connecting]
        if reconciliation is not None and snapshot_bus is not None and catch_up is not None:
            loops = ReconciliationLoops(
                reconciliation, catch_up, period_s=node.settings.reconciliation_period_s
            )
            reconciliation.on_outbox_commit = notify_relay
            reconciliation.on_new_finding = lambda finding: metrics.reconciliation_finding(
                finding.kind
            )
            snapshot_bus.on_kept = loops.snapshot_kept
            tasks.append(asyncio.create_task(loops.publish_forever(), name="snapshot-publish"))
            tasks.append(asyncio.create_task(loops.compare_forever(), name="reconcile"))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            transfers.on_outbox_commit = None
            transfers.on_transfer_finished = None
            if reconciliation is not None:
                reconciliation.on_outbox_commit = None
                reconciliation.on_new_finding = None
            if messaging.unit_log is not None:
                messaging.unit_log.on_commit = None
            await edge.stop()

    return lifespan


def _unit_index_wiring(
    node: Node, bus: TransferBus, metrics: Metrics
) -> tuple[UnitIndexHandlers | None, IndexCatchUp | None]:
    """The federation unit index's subscribers, and the custody check before each vote."""
    messaging, transfers = node.messaging, node.transfers
    if messaging is None or messaging.unit_index is None:
        return None, None
    index = messaging.unit_index
    index_bus = UnitIndexBus(
        index,
        messaging.directory.current,
        SqlQuarantine(messaging.engine),
        party=node.settings.party,
        on_quarantined=metrics.record_quarantined,
        directory_behind=messaging.directory.is_behind,
    )
    catch_up = IndexCatchUp(index)
    index.on_advanced = catch_up.advanced
    bus.custody_gate = catch_up
    transfers.custody_check = index.custody_refusals
    handlers = UnitIndexHandlers(
        index_bus.on_unit_record,
        index_bus.on_decision,
        stored_offsets=lambda: asyncio.to_thread(index.offsets),
    )
    return handlers, catch_up


async def _tick_forever(transfers: Transfers) -> None:
    while True:
        try:
            await asyncio.to_thread(transfers.tick)
        except Exception:
            # A failed tick (database briefly unreachable) is retried at the next one.
            log.exception("transfer tick failed", party=transfers.party)
        await asyncio.sleep(TRANSFER_TICK_INTERVAL_S)
