"""The AEF export (6/CMA.4): ``GET /v1/reports/aef/{year}?format=json|csv|xlsx``.

Public: the AEF is what a Party submits for publication. Its tables name
Parties, LoAs and authorised entities and sum holdings by account type; no
account or account holder appears in them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from registry.application import handlers
from registry.entrypoints.api.auth import ANONYMOUS_ALLOWED, PublicReader
from registry.entrypoints.api.dependencies import NodeDep, execute
from registry.entrypoints.api.schemas import VintageParam
from registry.reports.aef import SUBMISSION_VERSION_DEFAULT, build_aef
from registry.reports.formats import FILE_SUFFIXES, MEDIA_TYPES, ReportFormat, render

router = APIRouter(prefix="/reports", tags=["reports"])

SUBMISSION_VERSION_MAX = 1_000


def aef_file_name(party: str, year: int, report_format: ReportFormat) -> str:
    return f"aef-{party}-{year}{FILE_SUFFIXES[report_format]}"


@router.get(
    "/aef/{year}",
    openapi_extra=ANONYMOUS_ALLOWED,
    responses={
        200: {
            "description": "the five AEF tables of the year",
            "content": {media_type: {} for media_type in MEDIA_TYPES.values()},
        }
    },
)
def aef_export(
    year: VintageParam,
    node: NodeDep,
    _: PublicReader,
    report_format: Annotated[ReportFormat, Query(alias="format")] = ReportFormat.JSON,
    submission_version: Annotated[
        int, Query(ge=1, le=SUBMISSION_VERSION_MAX)
    ] = SUBMISSION_VERSION_DEFAULT,
) -> Response:
    """Table 1's NDC type, period and method come from the NDC set under ``PUT /v1/ndc``."""
    source = execute(node, handlers.report_source, year)
    document: dict[str, Any] = build_aef(
        node=source.node,
        reported_year=source.reported_year,
        generated_at=source.read_at,
        accounts=source.accounts,
        approaches=source.approaches,
        authorisations=source.authorisations,
        audit=source.audit,
        submission_version=submission_version,
        ndc=None if source.ndc is None else source.ndc.configuration,
    ).to_document()
    if report_format is ReportFormat.JSON:
        return JSONResponse(document)
    file_name = aef_file_name(source.node.party, year, report_format)
    return Response(
        render(document, report_format),
        media_type=MEDIA_TYPES[report_format],
        headers={"Content-Disposition": f'attachment; filename="{file_name}"'},
    )
