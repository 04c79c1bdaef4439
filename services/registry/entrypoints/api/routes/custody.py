"""``GET /v1/unit-index``: this node's federation unit index, Party level, no auth.

What the node has folded in from the unit log and the decision topic: for every
serial range, how many times it was announced as issued, each Party's net count,
which Parties announced it leaving circulation (and whether one of them held
it, which is what takes it out of circulation), with the one Party that holds
it when the records say exactly that. Everything here is public under Article 6 (the AEF
publishes it); no account or holder appears. Empty when the node runs without
messaging (it keeps no index then).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from registry.entrypoints.api.auth import PublicReader
from registry.entrypoints.api.dependencies import NodeDep

router = APIRouter(tags=["custody"])


class IndexSegmentOut(BaseModel):
    cooperative_approach_id: str
    originating_registry_id: str
    first_serial: int
    last_serial: int
    issued: int
    vintage: int | None
    metric: str | None
    holdings: dict[str, int]
    left_circulation: int
    # Party -> times it announced the range leaving circulation.
    departures: dict[str, int]
    out_of_circulation: bool
    # Parties that announced it leaving circulation without holding it (a hostile
    # member's cancellation of another Party's units): taken out of nothing.
    stray_departures: list[str]
    holder: str | None


@router.get("/unit-index", response_model=list[IndexSegmentOut])
async def unit_index(node: NodeDep, _: PublicReader) -> list[IndexSegmentOut]:
    if node.messaging is None or node.messaging.unit_index is None:
        return []
    segments = await run_in_threadpool(node.messaging.unit_index.holdings)
    return [
        IndexSegmentOut(
            cooperative_approach_id=key.cooperative_approach_id,
            originating_registry_id=key.originating_registry_id,
            first_serial=segment.first,
            last_serial=segment.last,
            issued=segment.issued,
            vintage=segment.vintage,
            metric=segment.metric,
            holdings=dict(segment.holdings),
            left_circulation=segment.left_circulation,
            departures=dict(segment.departures),
            out_of_circulation=segment.out_of_circulation,
            stray_departures=list(segment.stray_departures()),
            holder=segment.holder(),
        )
        for key, segment in segments
    ]
