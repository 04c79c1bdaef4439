"""``GET /public`` (the page) and ``GET /public/style.css`` (its only stylesheet)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates

from registry.entrypoints.api.auth import ANONYMOUS_ALLOWED, PublicReader
from registry.entrypoints.api.dependencies import NodeDep
from registry.entrypoints.public.page import DIRECTION_IN, DIRECTION_OUT, build_public_page

PUBLIC_PATH = "/public"
STYLESHEET_PATH = f"{PUBLIC_PATH}/style.css"
PAGE_TEMPLATE = "public.html"

_HERE = Path(__file__).resolve().parent
_STYLESHEET_FILE = _HERE / "static" / "public.css"
# Jinja2Templates turns autoescaping on for .html templates: every value the
# ledger holds (names, terms) is escaped on the way out.
_templates = Jinja2Templates(directory=_HERE / "templates")

router = APIRouter(tags=["public"])


@router.get(
    PUBLIC_PATH,
    response_class=HTMLResponse,
    summary="Public transparency page",
    openapi_extra=ANONYMOUS_ALLOWED,
)
def public_page(request: Request, node: NodeDep, _: PublicReader) -> HTMLResponse:
    page = build_public_page(node)
    return _templates.TemplateResponse(
        request,
        PAGE_TEMPLATE,
        {
            "page": page,
            "stylesheet_path": STYLESHEET_PATH,
            "direction_out": DIRECTION_OUT,
            "direction_in": DIRECTION_IN,
        },
    )


@router.get(STYLESHEET_PATH, include_in_schema=False)
def stylesheet() -> FileResponse:
    return FileResponse(_STYLESHEET_FILE, media_type="text/css")
