"""The web dashboard at ``/ui``: a page and its script and style, all served by the API itself (no CDN: the
product works offline). The page holds no data: its script calls ``/v1`` with the API key the user logs in with
(kept in the browser's localStorage), so the dashboard can do exactly what the key may and nothing more."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
router = APIRouter(include_in_schema=False)


@router.get("/ui")
def dashboard() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html")


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/ui")


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
