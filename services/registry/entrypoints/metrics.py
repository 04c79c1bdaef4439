"""Prometheus metrics of one node, served at ``GET /metrics``.

Every app gets its own ``CollectorRegistry`` (never the process-global one), so
several nodes built in one test process, or one process serving several apps,
do not clash over metric names.

Two kinds of numbers, both honest about where they come from:

- **Events counted in this process** since it started: HTTP requests, bus
  records quarantined (by topic kind and reason, :meth:`Metrics.record_quarantined`),
  and transfers finished, which the transfer wiring reports through
  :meth:`Metrics.transfer_finished` (counter by role and outcome, and a
  commit-latency histogram). A restart resets them, as Prometheus expects of
  counters.
- **State read from the database at scrape time** (a custom collector): the
  transfers this node has taken part in by role and status (from the
  reservation table, so they survive restarts and cover transfers finished by
  other processes), the outbox backlog (unsent rows, one cheap COUNT on the
  relay's partial index) and the age of its oldest unsent row (a MIN on the same
  index; 0 when nothing waits), which health compares with its bound. Consumer
  lag comes from ``MessagingEdge.consumer_lag()`` when messaging runs in this
  process; it is read once per scrape, bounded by ``CONSUMER_LAG_TIMEOUT_S``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Sequence
from enum import StrEnum

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from a6wire.reasons import RECONCILIATION_REASON_CODES
from registry.adapters.messaging import MESSAGING_TABLES, PartitionLag, oldest_unsent_age_s
from registry.adapters.messaging.outbox import utc_now
from registry.adapters.tables import reservations
from registry.domain.transfers import ReservationState, TransferDirection

log = structlog.get_logger(__name__)

METRICS_PATH = "/metrics"
METRIC_PREFIX = "registry"
# A scrape must answer well inside Prometheus's default 10 s scrape timeout, even
# when the broker is slow; past this the lag is reported as unknown (no samples).
CONSUMER_LAG_TIMEOUT_S = 2.0
# A cross-border commit is a few broker round trips (proposal, votes, decision):
# tens of milliseconds on one machine, seconds across continents, up to the
# transfer deadline when a participant is slow.
COMMIT_LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
# The route label of a request no route matched (404s, scanners): one series for
# all of them, so random paths cannot blow up the label set.
UNMATCHED_ROUTE_LABEL = "unmatched"


class TransferRole(StrEnum):
    """This node's role in a transfer: it initiated it, or it was asked to vote."""

    COORDINATOR = "COORDINATOR"
    PARTICIPANT = "PARTICIPANT"


class TransferStatus(StrEnum):
    PENDING = "PENDING"
    COMMITTED = "COMMITTED"
    ABORTED = "ABORTED"


# The ledger's reservation records one side of each transfer: the sending side is
# the coordinator (it initiated the transfer), the receiving side a participant.
_ROLE_OF_DIRECTION = {
    TransferDirection.OUTGOING: TransferRole.COORDINATOR,
    TransferDirection.INCOMING: TransferRole.PARTICIPANT,
}
_STATUS_OF_STATE = {
    ReservationState.PENDING: TransferStatus.PENDING,
    ReservationState.FINALISED: TransferStatus.COMMITTED,
    ReservationState.RELEASED: TransferStatus.ABORTED,
}

ConsumerLagSource = Callable[[], Awaitable[list[PartitionLag]]]


class _LedgerCollector(Collector):
    """Gauges read from the database at scrape time; see the module docstring."""

    def __init__(self, engine: Engine, lag_snapshot: Callable[[], Sequence[PartitionLag] | None]):
        self._engine = engine
        self._lag_snapshot = lag_snapshot

    def describe(self) -> Iterator[Metric]:
        # Names only, so registering the collector does not query the database.
        yield from self._families()
        yield self._outbox_age_family()
        yield self._consumer_lag()

    def collect(self) -> Iterator[Metric]:
        transfers, backlog, database_up = self._families()
        outbox_age = self._outbox_age_family()
        try:
            counts, unsent = self._read()
            age_s = oldest_unsent_age_s(self._engine, MESSAGING_TABLES.outbox, utc_now())
        except SQLAlchemyError:
            log.warning("metrics: database unreachable during scrape", exc_info=True)
            database_up.add_metric([], 0)
        else:
            database_up.add_metric([], 1)
            for role in TransferRole:
                for status in TransferStatus:
                    transfers.add_metric([role, status], counts.get((role, status), 0))
            backlog.add_metric([], unsent)
            outbox_age.add_metric([], age_s)
            yield transfers
            yield backlog
            yield outbox_age
        yield database_up
        yield self._consumer_lag()

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        transfers = GaugeMetricFamily(
            f"{METRIC_PREFIX}_transfers",
            "Cross-border transfers recorded in this node's ledger, by role and status",
            labels=["role", "status"],
        )
        backlog = GaugeMetricFamily(
            f"{METRIC_PREFIX}_outbox_unsent_rows",
            "Outbox rows committed but not yet acknowledged by the broker",
        )
        database_up = GaugeMetricFamily(
            f"{METRIC_PREFIX}_metrics_database_up",
            "1 if the database answered this scrape's queries, 0 if not",
        )
        return transfers, backlog, database_up

    @staticmethod
    def _outbox_age_family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            f"{METRIC_PREFIX}_outbox_oldest_unsent_age_seconds",
            "How long the oldest outbox row not yet acknowledged by the broker has waited "
            "(0 when none waits)",
        )

    def _read(self) -> tuple[dict[tuple[TransferRole, TransferStatus], int], int]:
        outbox = MESSAGING_TABLES.outbox
        by_role_and_state = select(
            reservations.c.direction, reservations.c.state, func.count()
        ).group_by(reservations.c.direction, reservations.c.state)
        unsent = select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
        counts: dict[tuple[TransferRole, TransferStatus], int] = {}
        with self._engine.connect() as connection:
            for direction, state, count in connection.execute(by_role_and_state):
                key = (
                    _ROLE_OF_DIRECTION[TransferDirection(direction)],
                    _STATUS_OF_STATE[ReservationState(state)],
                )
                counts[key] = counts.get(key, 0) + int(count)
            unsent_count = int(connection.execute(unsent).scalar_one())
        return counts, unsent_count

    def _consumer_lag(self) -> GaugeMetricFamily:
        lag = GaugeMetricFamily(
            f"{METRIC_PREFIX}_consumer_lag_records",
            "Records not yet consumed and committed, per topic partition (messaging only)",
            labels=["topic", "partition"],
        )
        for partition in self._lag_snapshot() or ():
            lag.add_metric([partition.topic, str(partition.partition)], partition.lag)
        return lag


class Metrics:
    """The node's metrics; the transfer wiring reports finished transfers here.

    ``create_app`` puts one on ``app.state.metrics``. The bus (or whatever runs
    the transfer protocol) calls ``transfer_finished`` once per transfer this
    node saw to its end, and ``watch_messaging(edge.consumer_lag)`` once the
    messaging edge has started.
    """

    def __init__(self, engine: Engine) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._transfers_finished = Counter(
            f"{METRIC_PREFIX}_transfers_finished",
            "Cross-border transfers this process saw to their end, by role and outcome",
            ["role", "outcome"],
            registry=self.registry,
        )
        self._commit_latency = Histogram(
            f"{METRIC_PREFIX}_transfer_commit_latency_seconds",
            "From a transfer's start at this node to its COMMIT, by role",
            ["role"],
            buckets=COMMIT_LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self._quarantined = Counter(
            f"{METRIC_PREFIX}_quarantined_records",
            "Bus records refused and quarantined (then committed past), by topic kind "
            "(inbox, decision) and reason code",
            ["topic_kind", "reason"],
            registry=self.registry,
        )
        self._http_requests = Counter(
            f"{METRIC_PREFIX}_http_requests",
            "HTTP requests answered, by method, route template and status code",
            ["method", "route", "status"],
            registry=self.registry,
        )
        for role in TransferRole:
            # Zero-valued series from the start, so rate() sees the first increment.
            self._commit_latency.labels(role=role)
            for outcome in (TransferStatus.COMMITTED, TransferStatus.ABORTED):
                self._transfers_finished.labels(role=role, outcome=outcome)
        self._consumer_lag_source: ConsumerLagSource | None = None
        self._lag_snapshot: list[PartitionLag] | None = None
        self._unit_index_lag = Gauge(
            f"{METRIC_PREFIX}_unit_index_lag_records",
            "Records of the unit log and decision topic the federation unit index has "
            "not read yet, by topic and partition",
            ["topic", "partition"],
            registry=self.registry,
        )
        self._reconciliation_findings = Counter(
            f"{METRIC_PREFIX}_reconciliation_findings",
            "Reconciliation findings new at this node (a Party's holdings snapshot against "
            "the unit index and this node's transfer records), by kind",
            ["kind"],
            registry=self.registry,
        )
        for kind in RECONCILIATION_REASON_CODES:
            self._reconciliation_findings.labels(kind=kind.value)
        self.registry.register(_LedgerCollector(engine, lambda: self._lag_snapshot))

    def reconciliation_finding(self, kind: str) -> None:
        """One finding new at this node (the kinds are a closed list: bounded labels)."""
        if kind not in RECONCILIATION_REASON_CODES:
            raise ValueError(f"{kind} is not a reconciliation finding kind")
        self._reconciliation_findings.labels(kind=kind).inc()

    def transfer_finished(
        self, role: TransferRole | str, outcome: TransferStatus | str, seconds: float
    ) -> None:
        """One transfer ended here; ``seconds`` from its start at this node to the decision."""
        role = TransferRole(role)
        outcome = TransferStatus(outcome)
        if outcome is TransferStatus.PENDING:
            raise ValueError("a finished transfer is COMMITTED or ABORTED, not PENDING")
        if seconds < 0:
            raise ValueError(f"a transfer cannot take negative time ({seconds} s)")
        self._transfers_finished.labels(role=role, outcome=outcome).inc()
        if outcome is TransferStatus.COMMITTED:
            self._commit_latency.labels(role=role).observe(seconds)

    def record_quarantined(self, topic_kind: str, reason_code: str) -> None:
        """One record newly quarantined (the bus calls this once per record, not per retry).

        Reason codes come from closed lists (the wire's, the ledger's, the
        arbiter's, the bus's own), so the label set stays bounded.
        """
        self._quarantined.labels(topic_kind=topic_kind, reason=reason_code).inc()

    def request_answered(self, method: str, route: str, status_code: int) -> None:
        self._http_requests.labels(method=method, route=route, status=str(status_code)).inc()

    def watch_messaging(self, consumer_lag: ConsumerLagSource | None) -> None:
        """Read consumer lag from this source at each scrape (``None``: messaging stopped)."""
        self._consumer_lag_source = consumer_lag
        self._lag_snapshot = None

    @property
    def consumer_lag_source(self) -> ConsumerLagSource | None:
        return self._consumer_lag_source

    async def refresh_consumer_lag(self) -> None:
        source = self._consumer_lag_source
        if source is None:
            self._lag_snapshot = None
            return
        try:
            self._lag_snapshot = await asyncio.wait_for(source(), CONSUMER_LAG_TIMEOUT_S)
        except Exception:
            # A scrape must not fail because the broker is slow or the edge stopped:
            # the lag series go missing, which an alert on absent() can catch.
            log.warning("metrics: consumer lag unavailable", exc_info=True)
            self._lag_snapshot = None

    async def refresh_unit_index_lag(self, source: ConsumerLagSource | None) -> None:
        """Read the unit index's lag once per scrape (no samples when unknown)."""
        self._unit_index_lag.clear()
        if source is None:
            return
        try:
            lags = await asyncio.wait_for(source(), CONSUMER_LAG_TIMEOUT_S)
        except Exception:
            log.warning("metrics: unit index lag unavailable", exc_info=True)
            return
        for partition in lags or ():
            self._unit_index_lag.labels(
                topic=partition.topic, partition=str(partition.partition)
            ).set(partition.lag)

    def exposition(self) -> bytes:
        """The text exposition format; reads the database, so call it off the event loop."""
        return generate_latest(self.registry)


class RequestMetricsMiddleware:
    """Counts every HTTP request by method, matched route template and status code."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status_code = 500

        async def send_recording_status(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            self.metrics.request_answered(scope["method"], route_template(scope), status_code)


def route_template(scope: Scope) -> str:
    """``/v1/accounts/{account_id}`` for ``/v1/accounts/THA-GOV-1``: bounded labels.

    Rebuilt from the matched path parameters, because the router's own template
    loses the prefixes of nested routers in this FastAPI version. A request no
    route matched counts under one label, so random paths cannot grow the series.
    """
    if scope.get("route") is None:
        return UNMATCHED_ROUTE_LABEL
    name_of_value = {str(value): name for name, value in (scope.get("path_params") or {}).items()}
    return "/".join(
        f"{{{name_of_value[segment]}}}" if segment in name_of_value else segment
        for segment in str(scope["path"]).split("/")
    )


router = APIRouter(tags=["observability"])


@router.get(METRICS_PATH, include_in_schema=False)
async def metrics_endpoint(request: Request) -> Response:
    """Prometheus scrape target; no token, like ``/v1/health`` (it shows no holder data)."""
    metrics: Metrics = request.app.state.metrics
    edge = getattr(request.app.state, "edge", None)
    if metrics.consumer_lag_source is None and edge is not None and edge.connected:
        # The app's lifespan put the messaging edge here: watch it once it has connected.
        metrics.watch_messaging(edge.consumer_lag)
    await metrics.refresh_consumer_lag()
    catch_up = getattr(request.app.state, "unit_index_catch_up", None)
    await metrics.refresh_unit_index_lag(None if catch_up is None else catch_up.lag)
    body = await run_in_threadpool(metrics.exposition)
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)


def install_metrics(app: FastAPI, engine: Engine) -> Metrics:
    """Give ``app`` its own metrics, request counting, and the ``/metrics`` route."""
    metrics = Metrics(engine)
    app.state.metrics = metrics
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    app.include_router(router)
    return metrics
