"""End to end: a real API and a real Celery worker process, a real dataset, HTTP only.

Runs on the embedded default (SQLite, filesystem broker) and, when CONDENSE_TEST_DATABASE_URL and
CONDENSE_TEST_BROKER_URL are set, on Postgres and Redis.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from app.core.db import Database
from app.models import Artifact
from engine.data import load_dataset
from tests.service_fixtures import (  # noqa: F401 - fixtures
    PRUNE_ARTIFACTS,
    backend,
    LiveService,
    assert_problem,
    follow_events,
    live_service,
    real_subset_npz,
    tiny_prune_spec,
    uploaded_dataset,
    wait_for_job,
    wait_until,
)

pytestmark = pytest.mark.slow
KEEP = 150


def test_prune_job_end_to_end(live_service: LiveService, uploaded_dataset: dict, tmp_path: Path) -> None:
    client = live_service.client
    spec = tiny_prune_spec(
        uploaded_dataset["id"], keep_fraction=None, keep_count=KEEP, proxy={"epochs": 2, "width": 16}
    )
    submitted = client.post("/v1/jobs", json=spec, headers={"Idempotency-Key": "e2e-1"})
    assert submitted.status_code == 202
    job_id = submitted.json()["id"]
    assert client.post("/v1/jobs", json=spec, headers={"Idempotency-Key": "e2e-1"}).json()["id"] == job_id

    events = follow_events(client, job_id)
    statuses = [e["data"]["status"] for e in events if e["type"] == "status"]
    assert statuses == ["queued", "running", "succeeded"]
    progress = [e["progress"] for e in events if e["type"] == "progress"]
    assert len(progress) >= 2 and progress == sorted(progress)

    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and job["attempt"] == 1 and job["progress"] == 1.0
    assert job["metrics"]["kept"] == KEEP and 0 <= job["metrics"]["subset_accuracy"]["mean"] <= 1

    files = {}
    for artifact in job["artifacts"]:
        response = client.get(artifact["url"])
        assert response.status_code == 200 and response.headers["content-type"] == artifact["content_type"]
        assert hashlib.sha256(response.content).hexdigest() == artifact["sha256"]
        files[artifact["name"]] = response.content
    assert set(files) == PRUNE_ARTIFACTS

    num_train = uploaded_dataset["splits"]["train"]
    indices = np.load(io.BytesIO(files["indices.npy"]))
    assert len(indices) == KEEP and len(np.unique(indices)) == KEEP
    assert indices.min() >= 0 and indices.max() < num_train
    scores = np.load(io.BytesIO(files["scores.npy"]))
    assert scores.shape == (num_train,) and np.isfinite(scores).all()
    assert sorted(np.load(io.BytesIO(files["ranking.npy"])).tolist()) == list(range(num_train))
    assert json.loads(files["indices.json"])["indices"] == indices.tolist()
    rows = list(csv.DictReader(io.StringIO(files["scores.csv"].decode())))
    assert len(rows) == num_train and sum(int(r["selected"]) for r in rows) == KEEP
    # kept.csv names each kept sample's source in the upload, as scores.csv does for every sample.
    kept = list(csv.DictReader(io.StringIO(files["kept.csv"].decode())))
    assert sorted(int(r["index"]) for r in kept) == sorted(indices.tolist())
    assert {r["source"] for r in kept} == {r["source"] for r in rows if r["selected"] == "1"} and all(r["source"] for r in kept)
    with zipfile.ZipFile(io.BytesIO(files["subset.zip"])) as archive:
        assert sum(n.startswith("train/") for n in archive.namelist()) == KEEP
    report = json.loads(files["report.json"])
    assert report["config"]["method"] == "el2n" and report["selection"]["kept"] == KEEP

    preview = Image.open(io.BytesIO(files["preview.png"]))
    assert preview.format == "PNG" and min(preview.size) >= 256

    coreset = tmp_path / "coreset.npz"
    coreset.write_bytes(files["coreset.npz"])
    reloaded = load_dataset(coreset)
    assert len(reloaded.y_train) == KEEP and len(reloaded.y_test) == uploaded_dataset["splits"]["test"]

    url = job["artifacts"][0]["url"]
    etag = client.get(url).headers["etag"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    ranged = client.get(url, headers={"Range": "bytes=0-9"})
    assert ranged.status_code == 206 and len(ranged.content) == 10

    body = assert_problem(client.post(f"/v1/jobs/{job_id}/cancel"), 409)
    assert body["type"] == "urn:condense:problem:job-finished" and "succeeded" in body["detail"]
    assert client.get(f"/v1/jobs/{job_id}").json() == job  # the refused cancel changed nothing


def test_running_job_is_canceled(live_service: LiveService, uploaded_dataset: dict) -> None:
    client = live_service.client
    spec = tiny_prune_spec(uploaded_dataset["id"], proxy={"epochs": 500, "width": 16})
    job_id = client.post("/v1/jobs", json=spec).json()["id"]
    wait_for_job(client, job_id, {"running"})
    settings = live_service.settings
    wait_until(lambda: (settings.work_root / job_id).exists(), 30, "work folder made")  # something to clean up
    asked = time.monotonic()
    canceled = client.post(f"/v1/jobs/{job_id}/cancel")
    assert canceled.status_code == 200 and canceled.json()["cancel_requested"]
    wait_for_job(client, job_id, {"canceled"}, timeout_s=60)
    # The worker reads the flag every CONDENSE_CANCEL_CHECK_INTERVAL_S (0.2 s here) between batches.
    assert time.monotonic() - asked < 5
    events = follow_events(client, job_id, timeout_s=60)
    assert events[-1]["data"]["status"] == "canceled"
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "canceled" and job["artifacts"] == [] and job["finished_at"]
    assert_problem(client.post(f"/v1/jobs/{job_id}/cancel"), 409)

    # Its checkpoints go (the worker removes them just after recording the status) and nothing was staged.
    wait_until(lambda: not (settings.work_root / job_id).exists(), 5, "work folder removed")
    assert not any((settings.blob_root / ".tmp").iterdir())
    db = Database(settings.database_url)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Artifact).where(Artifact.job_id == job_id)) == 0
    db.dispose()
