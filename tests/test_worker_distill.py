"""Distill jobs through the worker's runner, in-process on the built-in digits with tiny settings:
artifacts and their formats, progress, cancellation, resume from a checkpoint, expert reuse."""

from __future__ import annotations

import io
import json
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from safetensors.numpy import load as load_safetensors
from sqlalchemy import select, update

from app.blobstore import LocalBlobStore
from app.core.config import Settings
from app.core.db import Database
from app.models import ExpertSet, Job, JobStatus, utcnow
from app.schemas.jobs import DistillJobCreate
from app.services import jobs
from app.services.reusable import BlobExpertStore
from app.services.auth import tenant_named
from engine.distill.schedule import DifficultySchedule
from tests.service_fixtures import (  # noqa: F401 - fixtures
    TINY_EXPERTS,
    TINY_TRAJECTORY,
    backend,
    client,
    db,
    run_job_in_process,
    run_to_success as run,
    settings,
    tiny_distill_spec,
)
from app.services.job_configs import distill_config

CLASSES, SIDE = 10, 8  # digits: 10 classes of 8x8 grey images
FAST_DM = {"batch_real": 32}  # short iterations, for tests that need many of them
DISTILL_ARTIFACTS = {
    "synthetic.safetensors": "application/octet-stream",
    "synthetic.npz": "application/zip",
    "synthetic_png.zip": "application/zip",
    "preview.png": "image/png",
    "loss_curve.json": "application/json",
    "loss_curve.png": "image/png",
    "report.json": "application/json",
}


@pytest.fixture
def dataset_id(client: TestClient) -> str:
    return str(client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"])


def submit(client: TestClient, spec: dict[str, Any]) -> str:
    response = client.post("/v1/jobs", json=spec)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def download(client: TestClient, job: dict[str, Any]) -> dict[str, bytes]:
    files = {}
    for artifact in job["artifacts"]:
        response = client.get(artifact["url"])
        assert response.status_code == 200
        assert response.headers["content-type"] == artifact["content_type"] == DISTILL_ARTIFACTS[artifact["name"]]
        files[artifact["name"]] = response.content
    assert set(files) == set(DISTILL_ARTIFACTS)
    return files


def trajectory_spec(dataset_id: str, kind: str = "distill", **overrides: Any) -> dict[str, Any]:
    return tiny_distill_spec(
        dataset_id, kind, method="mtt", trajectory=TINY_TRAJECTORY, experts=TINY_EXPERTS
    ) | overrides


def test_distill_job_succeeds_with_its_artifacts(client: TestClient, settings: Settings, dataset_id: str) -> None:
    ipc = 2
    job = run(client, settings, tiny_distill_spec(dataset_id, ipc=ipc, iterations=5))
    assert (job["attempt"], job["progress"], job["stage"]) == (1, 1.0, "done")
    metrics = job["metrics"]
    assert {"synthetic_accuracy", "random_accuracy", "timings"} <= metrics.keys()
    assert 0 <= metrics["synthetic_accuracy"]["mean"] <= 1 and metrics["synthetic_accuracy"]["std"] == 0.0
    assert metrics["iterations"] == 5 and metrics["resumed_from_iteration"] == 0
    assert metrics["learned_lr"] is None and metrics["soft_labels"] is False and "experts" not in metrics
    assert metrics["timings"]["seconds_per_iteration"] > 0

    files = download(client, job)
    n = CLASSES * ipc
    tensors = load_safetensors(files["synthetic.safetensors"])
    assert tensors["images"].shape == (n, 1, SIDE, SIDE) and tensors["images"].dtype == np.float32
    assert tensors["labels"].tolist() == np.repeat(np.arange(CLASSES), ipc).tolist()  # class-major, hard
    with np.load(io.BytesIO(files["synthetic.npz"]), allow_pickle=False) as npz:
        assert npz["images_uint8"].shape == (n, 1, SIDE, SIDE) and npz["images_uint8"].dtype == np.uint8
        np.testing.assert_array_equal(npz["images"], tensors["images"])  # the same set in both formats
        assert npz["mean"].shape == npz["std"].shape == (1,)
    curve = json.loads(files["loss_curve.json"])
    assert curve["iteration"] == [1, 2, 3, 4, 5] and len(curve["loss"]) == 5
    report = json.loads(files["report.json"])
    assert report["kind"] == "distill" and report["config"]["method"] == "dm" and report["config"]["ipc"] == ipc
    assert report["evaluation"]["synthetic"]["mean"] == metrics["synthetic_accuracy"]["mean"]
    gain = report["gain_over_random"]
    assert metrics["gain_over_random"] == {"mean": gain["mean"], "std": gain["std"], "verdict": gain["verdict"]}
    ranking = report["dd_ranking"]["improvement_over_random"]
    assert metrics["dd_ranking"]["improvement_over_random"] == {
        "mean": ranking["mean"], "std": ranking["std"], "verdict": ranking["verdict"]
    }
    assert ranking["verdict"]["verdict"] == "not enough seeds to tell"  # the tiny spec evaluates one seed
    # Distilled vs pruned vs random at the same size: the coreset row, its gains and the recommendation.
    assert report["evaluation"]["coreset"]["train_size"] == n and report["coreset"]["selection"]["kept"] == n
    assert metrics["recommendation"] == report["comparison"]["recommendation"]
    assert metrics["recommendation"].startswith(f"at IPC {ipc} on this data")
    assert metrics["synthetic_over_coreset"]["verdict"] == report["comparison"]["synthetic_over_coreset"]["verdict"]
    assert Image.open(io.BytesIO(files["preview.png"])).format == "PNG"

    events = client.get(f"/v1/jobs/{job['id']}/events.json", params={"limit": 1000}).json()["data"]
    progress = [e["progress"] for e in events if e["type"] == "progress"]
    assert progress == sorted(progress) and any(e["stage"] == "distill" for e in events if e["type"] == "progress")
    assert not (settings.work_root / job["id"]).exists()


def test_trajectory_experts_are_trained_once_then_reused(
    client: TestClient, settings: Settings, db: Database, dataset_id: str
) -> None:
    window = {"prune_method": "el2n", "mode": "window", "window": [0.5, 0.9]}
    first = run(client, settings, trajectory_spec(dataset_id, "prune_then_distill", **window))
    assert first["metrics"]["experts"] == {
        "reused": False, "trained": True, "count": 2, "epochs": 3, "trained_by_job": first["id"]
    }
    assert first["metrics"]["learned_lr"] > 0
    report = json.loads(download(client, first)["report.json"])
    assert report["kind"] == "prune_then_distill" and report["init"]["mode"] == "pruned"
    assert len(report["init"]["indices"]) == CLASSES * 2

    # Another kind, init and iteration count: the experts depend only on data, model and expert config.
    second = run(client, settings, trajectory_spec(dataset_id, init="noise", iterations=3))
    assert second["metrics"]["experts"] == {
        "reused": True, "trained": False, "count": 2, "epochs": 3, "trained_by_job": first["id"]
    }
    assert json.loads(download(client, second)["report.json"])["experts"]["reused"] is True
    with db.session() as session:
        rows = session.scalars(select(ExpertSet)).all()
        assert [(r.key, r.job_id) for r in rows] == [(report["experts"]["key"], first["id"])]
        assert settings.blob_root.joinpath(rows[0].blob_key).stat().st_size == rows[0].size_bytes

    # DATM-style on the same experts: soft labels, with the label model they came from in the metrics.
    soft = run(client, settings, trajectory_spec(dataset_id, method="datm", iterations=2))
    assert soft["metrics"]["experts"]["reused"] is True and soft["metrics"]["soft_labels"] is True
    label_model = soft["metrics"]["label_model"]
    assert (label_model["expert"], label_model["epoch"]) == (0, 3) and 0.0 <= label_model["test_accuracy"] <= 1.0
    assert "label_model" not in second["metrics"]

    # A different expert config is a different asset.
    third = run(client, settings, trajectory_spec(dataset_id, experts=TINY_EXPERTS | {"epochs": 4}, iterations=2))
    assert third["metrics"]["experts"]["trained"] and third["metrics"]["experts"]["trained_by_job"] == third["id"]


def test_lost_expert_blob_is_trained_again(
    client: TestClient, settings: Settings, db: Database, dataset_id: str
) -> None:
    first = run(client, settings, trajectory_spec(dataset_id, iterations=2))
    for blob in settings.blob_root.rglob("*.safetensors"):
        blob.unlink()  # the blob volume lost every file, experts included
    second = run(client, settings, trajectory_spec(dataset_id, iterations=2))
    assert second["metrics"]["experts"]["trained"] and second["metrics"]["experts"]["trained_by_job"] == second["id"]
    with db.session() as session:
        row = session.scalars(select(ExpertSet)).one()  # the record now points at the retrained set
        assert row.job_id == second["id"] and settings.blob_root.joinpath(row.blob_key).is_file()
    assert first["metrics"]["experts"]["trained_by_job"] == first["id"]


def test_blob_expert_store_round_trip(
    client: TestClient, settings: Settings, db: Database, dataset_id: str, tmp_path: Path
) -> None:
    trainer, reuser = (submit(client, tiny_distill_spec(dataset_id, seed=seed)) for seed in (1, 2))
    with db.session() as session:
        tenant = jobs.get_job(session, trainer, tenant_id=None).tenant_id
        stranger = tenant_named(session, "stranger").id
    store = BlobExpertStore(db, LocalBlobStore(settings.blob_root), trainer, tenant, settings.lease_s)
    assert not store.get("experts-abc", tmp_path / "missing.safetensors")
    assert not (tmp_path / "missing.safetensors").exists()
    src = tmp_path / "experts.safetensors"
    src.write_bytes(b"trajectories")
    store.put("experts-abc", src)
    assert src.exists()  # copied: the engine still owns its file
    # Another tenant with the same expert key (the same data and config) trains its own.
    elsewhere = BlobExpertStore(db, LocalBlobStore(settings.blob_root), reuser, stranger, settings.lease_s)
    assert not elsewhere.get("experts-abc", tmp_path / "theirs.safetensors")
    again = BlobExpertStore(db, LocalBlobStore(settings.blob_root), reuser, tenant, settings.lease_s)
    assert again.get("experts-abc", tmp_path / "back.safetensors")
    assert (tmp_path / "back.safetensors").read_bytes() == b"trajectories"
    assert again.reused_from_job == trainer
    with db.session() as session:
        row = session.get(ExpertSet, (tenant, "experts-abc"))
        assert row is not None and row.blob_key.endswith(".safetensors") and row.size_bytes == len(b"trajectories")


def test_running_distill_job_is_canceled(client: TestClient, settings: Settings, db: Database, dataset_id: str) -> None:
    job_id = submit(client, tiny_distill_spec(dataset_id, iterations=100_000, distribution=FAST_DM))
    worker = threading.Thread(target=run_job_in_process, args=(settings, job_id))
    worker.start()
    _wait_for_stage(client, job_id, "distill")
    assert client.post(f"/v1/jobs/{job_id}/cancel").json()["cancel_requested"]
    worker.join(timeout=60)
    assert not worker.is_alive()
    with db.session() as session:
        job = jobs.get_job(session, job_id, tenant_id=None)
        assert job.status == JobStatus.CANCELED and job.artifacts == [] and job.finished_at is not None
    assert not (settings.work_root / job_id).exists()


def test_redelivered_job_resumes_from_its_checkpoint(
    client: TestClient, settings: Settings, db: Database, dataset_id: str
) -> None:
    iterations = 200
    spec = tiny_distill_spec(dataset_id, iterations=iterations, checkpoint_every=5, distribution=FAST_DM)
    job_id = submit(client, spec)
    worker = threading.Thread(target=run_job_in_process, args=(settings, job_id, "lost-worker"))
    worker.start()
    # Past the coreset start's selection (the first quarter of progress) and into the checkpointed loop.
    _wait_for_stage(client, job_id, "distill", min_progress=0.4)
    # The worker's lease expires (as when its machine vanished) and the reaper re-queues the job.
    with db.session() as session:
        session.execute(update(Job).where(Job.id == job_id).values(lease_until=utcnow() - timedelta(seconds=1)))
    with db.session() as session:
        assert jobs.reap_expired(session) == [job_id]
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert any((settings.work_root / job_id).iterdir())  # a worker that lost its job keeps the checkpoints

    run_job_in_process(settings, job_id, "next-worker")
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and job["attempt"] == 2, job["error"]
    assert 0 < job["metrics"]["resumed_from_iteration"] < iterations
    assert job["metrics"]["iterations"] == iterations
    curve = json.loads(download(client, job)["loss_curve.json"])
    assert len(curve["loss"]) == iterations  # the resumed run continues the same curve


def _wait_for_stage(client: TestClient, job_id: str, stage: str, min_progress: float = 0.0) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["stage"] == stage and job["progress"] >= min_progress:
            return
        assert job["status"] in ("queued", "running"), job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not reach stage {stage!r} at progress {min_progress}")


def test_spec_becomes_the_engine_config() -> None:
    spec = DistillJobCreate.model_validate(
        tiny_distill_spec("ds_x", method="datm", trajectory=TINY_TRAJECTORY, experts=TINY_EXPERTS, lr_images=50.0)
    )
    config = distill_config(spec)
    assert (config.method, config.ipc, config.init.mode, config.width) == ("datm", 2, "auto", 8)
    assert (config.options["experts"].num_experts, config.options["experts"].epochs) == (2, 3)
    assert (config.options["trajectory"].syn_steps, config.options["trajectory"].expert_epochs, config.options["trajectory"].lr_images) == (5, 1, 50.0)
    assert (config.options["trajectory"].min_start_epoch, config.options["trajectory"].max_start_epoch) == (None, 1)
    assert config.schedule is None  # the method's own (pad's FIEX), resolved by the engine

    pad = distill_config(DistillJobCreate.model_validate(tiny_distill_spec(
        "ds_x", method="pad",
        trajectory={"min_start_epoch": 1, "max_start_epoch": 2, "max_start_epoch_final": 3, "lr_labels": 2.0},
        schedule={"initial_ratio": 0.5, "addition_end_epoch": 2, "removal_epoch": 3, "removal_fraction": 0.2},
    )))
    t = pad.options["trajectory"]
    assert (t.min_start_epoch, t.max_start_epoch, t.max_start_epoch_final, t.lr_labels) == (1, 2, 3, 2.0)
    assert pad.schedule == DifficultySchedule(0.5, 2, 3, 0.2)
    # An option left out is PAD's for the expert run; an explicit null removal_epoch removes nothing.
    some = distill_config(DistillJobCreate.model_validate(tiny_distill_spec(
        "ds_x", method="pad", experts={"epochs": 10}, schedule={"initial_ratio": 0.5, "removal_epoch": None})))
    assert some.schedule == DifficultySchedule.for_experts(10, initial_ratio=0.5, removal_epoch=None)
    assert some.schedule.addition_end_epoch == 2
    assert config.evaluation is not None and config.evaluation.full_data is False
    assert config.options["distribution"].lr_images != 50.0  # only the method's own family gets the override

    dc = distill_config(
        DistillJobCreate.model_validate(
            tiny_distill_spec("ds_x", method="dc", gradient={"outer_loop": 2, "inner_loop": 1})
        )
    )
    assert (dc.options["gradient"].outer_loop, dc.options["gradient"].inner_loop, dc.options["trajectory"].max_start_epoch_final) == (2, 1, None)
