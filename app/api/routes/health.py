"""Liveness and readiness probes (outside /v1: they describe the process, not the API)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


def _check(probe: Callable[[], None]) -> dict[str, str]:
    try:
        probe()
    except Exception as exc:
        return {"status": "error", "detail": f"{type(exc).__name__}: {exc}"[:300]}
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "a dependency is unreachable"}})
async def readyz(request: Request) -> JSONResponse:
    """Database, broker and blob store are reachable; each is reported."""
    state = request.app.state
    checks = {
        name: await run_in_threadpool(_check, probe)
        for name, probe in (
            ("database", state.db.ping),
            ("broker", state.doorbell.ping),
            ("blob_store", state.blobs.ping),
        )
    }
    down = [name for name, check in checks.items() if check["status"] != "ok"]
    if not down:
        return JSONResponse({"status": "ok", "checks": checks})
    return JSONResponse(
        {"status": "unavailable", "unavailable": down, "checks": checks},
        status_code=503,
        headers={"Retry-After": str(state.settings.retry_after_s)},
    )
