"""``GET /v1/unit-index``: this node's federation unit index, Party level, no auth.

What the node has folded in from the unit log and the decision topic: for every
serial range, how many times it was announced as issued, each Party's net count,
and whether it left circulation, with the one Party that holds it when the
records say exactly that. Everything here is public under Article 6 (the AEF
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
            holder=segment.holder(),
        )
        for key, segment in segments
    ]
