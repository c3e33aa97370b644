"""NaN and infinities in what goes into a JSON column are stored as null on both backends: PostgreSQL refuses
the ``NaN`` Python's json writes (the statement, and with it a job, failed there and not on SQLite). And a
test split without a class, whose accuracy is undefined, gives a job that succeeds and says so."""

from __future__ import annotations

import io
import json
import math
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.core.db import Database
from app.models import Baseline, Job, JobStatus
from app.services import jobs
from app.services.auth import LOCAL_TENANT, tenant_named
from app.services.reusable import DatabaseBaselineStore
from tests.service_fixtures import (  # noqa: F401 - fixtures
    backend,
    client,
    db,
    run_job_in_process,
    settings,
    tiny_prune_spec,
)

NOT_FINITE = {"nan": math.nan, "inf": math.inf, "per_class": [0.5, math.nan, -math.inf], "nested": {"x": (math.nan,)}}
AS_STORED = {"nan": None, "inf": None, "per_class": [0.5, None, None], "nested": {"x": [None]}}


def test_a_baseline_with_nan_is_stored_with_null(client: TestClient, db: Database) -> None:
    dataset_id = client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    with db.session() as session:
        tenant_id = tenant_named(session, LOCAL_TENANT).id
    store = DatabaseBaselineStore(db, tenant_id, dataset_id)
    store.put("baseline-random-nan", NOT_FINITE)
    assert store.get("baseline-random-nan") == AS_STORED
    with db.session() as session:
        row = session.get(Baseline, (tenant_id, "baseline-random-nan"))
        assert row is not None and row.stats == AS_STORED


def test_job_metrics_and_event_data_with_nan_are_stored_with_null(client: TestClient, db: Database) -> None:
    dataset_id = client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    job_id = client.post("/v1/jobs", json=tiny_prune_spec(dataset_id)).json()["id"]
    with db.session() as session:
        assert jobs.claim(session, job_id, "test-worker", lease_s=60, time_limit_s=60)
        jobs.add_event(session, job_id, "progress", data=NOT_FINITE)
        assert jobs.finish(session, job_id, "test-worker", JobStatus.SUCCEEDED, metrics=NOT_FINITE)
    with db.session() as session:  # the rows themselves, not only the API's rendering of them
        job = session.get(Job, job_id)
        assert job is not None and job.metrics == AS_STORED
        assert [e.data for e in jobs.list_events(session, job_id, after=0, limit=10) if e.type == "progress"] == [AS_STORED]
    assert client.get(f"/v1/jobs/{job_id}").json()["metrics"] == AS_STORED
    events = client.get(f"/v1/jobs/{job_id}/events.json").json()["data"]
    assert [e["data"] for e in events if e["type"] == "progress"] == [AS_STORED]


def strict_json(raw: bytes) -> Any:
    """JSON as the standard defines it: Python's json also reads NaN and Infinity."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(raw, parse_constant=refuse)


def npz_without_test_class(absent: int, classes: int = 3, n: int = 120, side: int = 8) -> bytes:
    """Random images of ``classes`` classes with a test split that has none of class ``absent``."""
    rng = np.random.default_rng(0)
    y_test = np.array([c for c in range(classes) if c != absent] * 10)
    buffer = io.BytesIO()
    np.savez(
        buffer,
        x=rng.integers(0, 256, (n, 1, side, side), dtype=np.uint8),
        y=np.arange(n) % classes,
        x_test=rng.integers(0, 256, (len(y_test), 1, side, side), dtype=np.uint8),
        y_test=y_test,
    )
    return buffer.getvalue()


def test_a_prune_job_on_a_test_split_missing_a_class_succeeds(client: TestClient, settings: Settings) -> None:
    upload = client.post("/v1/datasets", files={"file": ("no-test-twos.npz", npz_without_test_class(2))})
    assert upload.status_code == 201, upload.text
    assert [c["test"] for c in upload.json()["classes"]] == [10, 10, 0]
    evaluation = {"seeds": 1, "epochs": 1, "width": 8, "compare_random": True, "full_data": True}
    spec = tiny_prune_spec(upload.json()["id"], evaluation=evaluation)
    job_id = client.post("/v1/jobs", json=spec).json()["id"]
    run_job_in_process(settings, job_id)  # stores the random and full-data baselines: refused with NaN on PostgreSQL
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded", job["error"]
    assert {"subset_accuracy", "random_accuracy", "full_accuracy"} <= job["metrics"].keys()
    url = next(a["url"] for a in job["artifacts"] if a["name"] == "report.json")
    report = strict_json(client.get(url).content)
    for name in ("subset", "random", "full"):
        stats = report["evaluation"][name]
        assert stats["per_class"][2] is None and stats["classes_without_test_samples"] == [2]
