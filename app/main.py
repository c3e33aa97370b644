"""FastAPI application factory; ``app.main:app`` is what uvicorn serves."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from app.api.deps import get_caller
from app import ui
from app.api.routes import datasets, health, jobs, methods, proxy_runs
from app.blobstore import LocalBlobStore
from app.core.body_limit import BodyLimit
from app.core.celery_client import create_celery
from app.core.config import Settings, get_settings
from app.core.db import Database
from app.core.migrate import startup_step, upgrade_when_reachable
from app.core.problems import install_problem_handlers
from app.schemas.jobs import JOB_KINDS
from app.schemas.problems import problem_responses
from app.services.auth import ensure_local_key, local_caller
from app.services.doorbell import Doorbell

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with startup_step("create the data folders"):
            settings.ensure_folders()
        with startup_step("migrate the database"):
            # Waits out a short database outage (both starting together, or a restart during one) instead of
            # exiting at once; a longer one still fails start-up with the connection error.
            await run_in_threadpool(upgrade_when_reachable, settings.database_url, settings.startup_db_wait_s)
        with startup_step("set up the database, blob store and broker clients"):
            db = Database.for_service(settings)
            app.state.settings = settings
            app.state.db = db
            app.state.blobs = LocalBlobStore(settings.blob_root)
            app.state.doorbell = Doorbell(create_celery(settings), db, settings.doorbell_stale_s)
        if settings.auth == "off":
            with startup_step("look up the local tenant"):
                app.state.local_caller = await run_in_threadpool(local_caller, db)
            log.warning("AUTHENTICATION IS OFF (CONDENSE_AUTH=off): every request acts as tenant 'local'")
        elif settings.environment == "development":
            # The embedded default is usable at once; production keys come from `condense admin create-key`.
            with startup_step("create the local API key"):
                await run_in_threadpool(ensure_local_key, db, settings)
        # Jobs orphaned while no API was up (dead workers, lost doorbells) are recovered at start-up.
        with startup_step("re-queue orphaned jobs"):
            rung = await run_in_threadpool(app.state.doorbell.reap)
        if rung:
            log.info("re-rang the doorbell for %d job(s): %s", len(rung), ", ".join(rung))
        yield
        db.dispose()

    # FastAPIOffline: /docs and /redoc with their scripts served by the API itself, not a CDN (works offline).
    app = FastAPIOffline(
        title="Condense",
        version="0.1.0",
        summary="Make image-classification training data smaller: coreset pruning and dataset distillation "
        "as a service.",
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit, max_bytes=settings.max_json_body_bytes)
    # Last, so that its crash catcher is the outermost middleware and covers the others too.
    install_problem_handlers(app, settings.retry_after_s, union_tags=JOB_KINDS)
    # A backstop: a route added without CallerDep still needs a key (FastAPI resolves it once per request).
    v1 = APIRouter(
        prefix="/v1", dependencies=[Depends(get_caller)], responses=problem_responses([401, 404, 413, 422, 429, 503])
    )
    v1.include_router(datasets.router)
    v1.include_router(jobs.router)
    v1.include_router(proxy_runs.router)
    v1.include_router(methods.router)
    app.include_router(v1)
    app.include_router(health.router)
    ui.install(app)
    return app


app = create_app()
