"""``GET /v1/reconciliation``: what this node found reconciling every Party's snapshot. Public.

Per Party, when its latest holdings snapshot was taken and compared here; and
every finding (kind, the Parties, serial ranges and transfer ids concerned,
whether the difference still lasts). All of it is Party level, as the AEF: no
account or holder appears. Empty when the node runs without messaging.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from registry.application.reconciliation import ReconciliationReport
from registry.entrypoints.api.auth import PublicReader
from registry.entrypoints.api.dependencies import NodeDep

router = APIRouter(tags=["reconciliation"])


class ComparisonOut(BaseModel):
    party: str
    snapshot_id: str
    taken_at: datetime
    compared_at: datetime
    # Differences (findings) in the last comparison of that Party's snapshot.
    differences: int


class FindingOut(BaseModel):
    kind: str
    # The Party whose snapshot showed it, and every Party concerned.
    snapshot_party: str
    parties: list[str]
    cooperative_approach_id: str | None
    originating_registry_id: str | None
    first_serial: int | None
    last_serial: int | None
    vintage: int | None
    metric: str | None
    transfer_ids: list[str]
    stated: int | None
    expected: int | None
    detail: str
    first_seen_at: datetime
    last_seen_at: datetime
    open: bool


class ReconciliationOut(BaseModel):
    party: str
    period_s: float
    open_findings: int
    parties: list[ComparisonOut]
    findings: list[FindingOut]


def report_out(party: str, period_s: float, report: ReconciliationReport) -> ReconciliationOut:
    return ReconciliationOut(
        party=party,
        period_s=period_s,
        open_findings=sum(1 for stored in report.findings if stored.open),
        parties=[
            ComparisonOut(
                party=c.party,
                snapshot_id=c.snapshot_id,
                taken_at=c.taken_at,
                compared_at=c.compared_at,
                differences=c.differences,
            )
            for c in report.parties
        ],
        findings=[
            FindingOut(
                kind=stored.finding.kind.value,
                snapshot_party=stored.party,
                parties=list(stored.finding.parties),
                cooperative_approach_id=stored.finding.cooperative_approach_id or None,
                originating_registry_id=stored.finding.originating_registry_id or None,
                first_serial=stored.finding.first_serial,
                last_serial=stored.finding.last_serial,
                vintage=stored.finding.vintage,
                metric=stored.finding.metric,
                transfer_ids=list(stored.finding.transfer_ids),
                stated=stored.finding.stated,
                expected=stored.finding.expected,
                detail=stored.finding.detail,
                first_seen_at=stored.first_seen_at,
                last_seen_at=stored.last_seen_at,
                open=stored.open,
            )
            for stored in report.findings
        ],
    )


@router.get("/reconciliation", response_model=ReconciliationOut)
async def reconciliation(node: NodeDep, _: PublicReader) -> ReconciliationOut:
    settings = node.settings
    if node.messaging is None or node.messaging.reconciliation is None:
        return ReconciliationOut(
            party=settings.party,
            period_s=settings.reconciliation_period_s,
            open_findings=0,
            parties=[],
            findings=[],
        )
    report = await run_in_threadpool(node.messaging.reconciliation.report)
    return report_out(settings.party, settings.reconciliation_period_s, report)
