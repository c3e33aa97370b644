"""End to end: distill and prune_then_distill jobs through HTTP with a real API and a real Celery
worker process, on a real dataset; the downloaded synthetic set, trained again with the engine's
evaluator in this process, reproduces the job's reported accuracy.

Runs on the embedded default (SQLite, filesystem broker) and, when CONDENSE_TEST_DATABASE_URL and
CONDENSE_TEST_BROKER_URL are set, on Postgres and Redis.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from engine.data import load_dataset
from engine.distill import SyntheticSet
from engine.distill.augment import default_strategy
from engine.evaluate import EvalSpec
from engine.evaluate.synthetic import evaluate_synthetic
from tests.service_fixtures import (  # noqa: F401 - fixtures
    TINY_TRAJECTORY,
    LiveService,
    backend,
    follow_events,
    live_service,
    real_subset_npz,
    tiny_distill_spec,
    uploaded_dataset,
)

pytestmark = pytest.mark.slow
IPC = 2
# Small enough for about a minute per job on two busy CPU cores, large enough that accuracy means something.
EVALUATION = {"seeds": 2, "epochs": 30, "width": 16, "compare_random": True, "full_data": False}


def run_job(live_service: LiveService, spec: dict[str, Any], tmp_path: Path) -> tuple[dict[str, Any], Path]:
    """POSTs the job, follows its events to success and downloads every artifact into ``tmp_path``."""
    client = live_service.client
    submitted = client.post("/v1/jobs", json=spec)
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    events = follow_events(client, job_id)
    assert [e["data"]["status"] for e in events if e["type"] == "status"] == ["queued", "running", "succeeded"]
    progress = [e["progress"] for e in events if e["type"] == "progress"]
    assert progress == sorted(progress) and any(e["stage"] == "distill" for e in events if e["type"] == "progress")

    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and job["attempt"] == 1 and job["progress"] == 1.0
    for artifact in job["artifacts"]:
        response = client.get(artifact["url"])
        assert response.status_code == 200 and response.headers["content-type"] == artifact["content_type"]
        assert hashlib.sha256(response.content).hexdigest() == artifact["sha256"]
        (tmp_path / artifact["name"]).write_bytes(response.content)
    assert {a["name"] for a in job["artifacts"]} == {
        "synthetic.safetensors", "synthetic.npz", "synthetic_png.zip", "preview.png", "loss_curve.json",
        "loss_curve.png", "report.json"
    }
    return job, tmp_path


def assert_same_accuracy_in_the_evaluator(job: dict[str, Any], folder: Path, real_subset_npz: Path) -> None:
    """Train the evaluator on the downloaded set exactly as the job did (its recorded evaluation
    settings, seeds and thread count) and compare every seed's test accuracy."""
    report = json.loads((folder / "report.json").read_text())
    dataset = load_dataset(real_subset_npz)
    assert dataset.content_hash == report["dataset"]["content_hash"]  # the data the worker trained on
    config = report["config"]
    ev = config["evaluation"]
    channels = dataset.image_shape[0]
    spec = EvalSpec(
        model=ev["model"],
        width=ev["width"],
        depth=ev["depth"],
        epochs=ev["epochs"],
        batch_size=ev["batch_size"],
        lr=ev["lr"],  # replaced by the learned lr where the set carries one
        seeds=ev["seeds"],
        device="cpu",
        dsa_strategy=(config["dsa_strategy"] or default_strategy(channels)) if ev["dsa"] else None,
    )
    reported = report["evaluation"]["synthetic"]
    assert job["metrics"]["synthetic_accuracy"] == {"mean": reported["mean"], "std": reported["std"]}
    previous_threads = torch.get_num_threads()
    # Float reductions are ordered by the thread count: use the worker's, so results match bit for bit.
    torch.set_num_threads(report["torch_threads"])
    try:
        for name in ("synthetic.safetensors", "synthetic.npz"):
            synthetic = SyntheticSet.load(folder / name)
            assert synthetic.images.shape == (dataset.num_classes * IPC, *dataset.image_shape)
            again = evaluate_synthetic(dataset, synthetic, spec, base_seed=config["seed"] + 1000)
            assert again.per_seed == reported["per_seed"], (name, again.per_seed, reported["per_seed"])
            assert again.mean == reported["mean"]
    finally:
        torch.set_num_threads(previous_threads)


def test_distill_job_end_to_end(
    live_service: LiveService, uploaded_dataset: dict[str, Any], real_subset_npz: Path, tmp_path: Path
) -> None:
    spec = tiny_distill_spec(
        uploaded_dataset["id"], ipc=IPC, iterations=20, width=16, distribution={"batch_real": 64}, evaluation=EVALUATION
    )
    job, folder = run_job(live_service, spec, tmp_path)
    metrics = job["metrics"]
    assert metrics["iterations"] == 20 and metrics["learned_lr"] is None and metrics["soft_labels"] is False
    assert {"synthetic_accuracy", "random_accuracy"} <= metrics.keys()
    with np.load(folder / "synthetic.npz", allow_pickle=False) as npz:
        assert npz["labels"].tolist() == np.repeat(np.arange(len(uploaded_dataset["classes"])), IPC).tolist()
    assert_same_accuracy_in_the_evaluator(job, folder, real_subset_npz)


def test_prune_then_distill_job_end_to_end(
    live_service: LiveService, uploaded_dataset: dict[str, Any], real_subset_npz: Path, tmp_path: Path
) -> None:
    spec = tiny_distill_spec(
        uploaded_dataset["id"],
        "prune_then_distill",
        method="mtt",
        ipc=IPC,
        iterations=10,
        width=16,
        prune_method="el2n",
        mode="window",
        window=[0.5, 0.9],
        proxy={"epochs": 2, "width": 8, "batch_size": 64},
        trajectory=TINY_TRAJECTORY,
        experts={"count": 2, "epochs": 3},
        evaluation=EVALUATION,
    )
    job, folder = run_job(live_service, spec, tmp_path)
    metrics = job["metrics"]
    assert metrics["experts"]["trained"] and metrics["experts"]["trained_by_job"] == job["id"]
    assert metrics["learned_lr"] > 0  # trajectory matching learns the student's lr; evaluation trains with it
    report = json.loads((folder / "report.json").read_text())
    assert report["kind"] == "prune_then_distill" and report["init"]["mode"] == "pruned"
    assert_same_accuracy_in_the_evaluator(job, folder, real_subset_npz)
