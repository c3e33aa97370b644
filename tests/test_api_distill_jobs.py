"""``POST /v1/jobs`` for ``distill`` and ``prune_then_distill``: typed specs, defaults from the engine,
and 422s naming the field (schema errors and the checks against the dataset)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.distill import method_names
from tests.service_fixtures import (  # noqa: F401 - fixtures
    TINY_EXPERTS,
    TINY_TRAJECTORY,
    assert_problem,
    backend,
    client,
    random_npz_bytes,
    settings,
    tiny_distill_spec,
)



@pytest.fixture
def dataset(client: TestClient) -> dict[str, Any]:
    return client.post("/v1/datasets", files={"file": ("d.npz", random_npz_bytes(n=121, classes=3))}).json()


@pytest.fixture
def dataset_id(dataset: dict[str, Any]) -> str:
    return str(dataset["id"])


def train_counts(dataset: dict[str, Any]) -> list[int]:
    return [c["train"] for c in dataset["classes"]]


def trajectory_spec(dataset_id: str, kind: str = "distill", **overrides: Any) -> dict[str, Any]:
    return tiny_distill_spec(
        dataset_id, kind, method="mtt", trajectory=TINY_TRAJECTORY, experts=TINY_EXPERTS
    ) | overrides


@pytest.mark.parametrize("method", method_names())
def test_every_registered_method_is_accepted(client: TestClient, dataset_id: str, method: str) -> None:
    response = client.post("/v1/jobs", json=tiny_distill_spec(dataset_id, method=method))
    assert response.status_code == 202, response.text
    job = response.json()
    assert (job["kind"], job["status"], job["spec"]["method"]) == ("distill", "queued", method)
    trajectory = method in ("mtt", "datm", "pad")
    # The method's own family options are filled with the engine's defaults; the others stay null.
    assert (job["spec"]["trajectory"] is not None, job["spec"]["experts"] is not None) == (trajectory, trajectory)
    assert (job["spec"]["distribution"] is not None) == (method == "dm")
    assert (job["spec"]["gradient"] is not None) == (method in ("dc", "dsa"))


def test_openapi_documents_the_distill_kinds(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["DistillMethod"]["enum"] == method_names()
    for name in ("DistillJobCreate", "PruneThenDistillJobCreate"):
        assert {"ipc", "method", "trajectory", "experts", "evaluation"} <= schemas[name]["properties"].keys()
    assert {"prune_method", "mode", "window"} <= schemas["PruneThenDistillJobCreate"]["properties"].keys()


def test_distill_defaults_come_from_the_engine(client: TestClient, dataset_id: str) -> None:
    spec = {"kind": "distill", "dataset_id": dataset_id, "method": "mtt", "ipc": 1}
    job = client.post("/v1/jobs", json=spec).json()
    assert job["spec"]["init"] == "auto" and job["spec"]["iterations"] == 200 and job["spec"]["width"] == 128
    assert job["spec"]["trajectory"] == {
        "syn_steps": 20, "expert_epochs": 2, "min_start_epoch": None, "max_start_epoch": None,
        "max_start_epoch_final": None, "lr": 0.01, "lr_labels": 5.0, "batch_syn": None,
    }
    assert job["spec"]["experts"] == {"count": 5, "epochs": 20, "lr": 0.01, "batch_size": 256}
    assert job["spec"]["evaluation"]["epochs"] == 300 and job["spec"]["evaluation"]["dsa"] is True


def test_prune_then_distill_is_accepted(client: TestClient, dataset_id: str) -> None:
    spec = trajectory_spec(
        dataset_id, "prune_then_distill", prune_method="el2n", mode="window", window=[0.5, 0.9], ipc=4
    )
    response = client.post("/v1/jobs", json=spec, headers={"Idempotency-Key": "ptd-1"})
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["kind"] == "prune_then_distill" and job["spec"]["window"] == [0.5, 0.9]
    assert client.post("/v1/jobs", json=spec, headers={"Idempotency-Key": "ptd-1"}).json()["id"] == job["id"]
    assert [j["id"] for j in client.get("/v1/jobs", params={"kind": "prune_then_distill"}).json()["data"]] == [
        job["id"]
    ]


def test_ipc_up_to_the_smallest_class(client: TestClient, dataset: dict[str, Any]) -> None:
    counts = train_counts(dataset)
    smallest = min(counts)
    assert smallest < max(counts)  # the limit is the smallest class, not any class
    assert client.post("/v1/jobs", json=tiny_distill_spec(dataset["id"], ipc=smallest)).status_code == 202
    too_many = tiny_distill_spec(dataset["id"], ipc=smallest + 1)
    body = assert_problem(client.post("/v1/jobs", json=too_many), 422, "ipc")
    assert str(smallest) in body["detail"]
    assert_problem(client.post("/v1/jobs", json=too_many | {"kind": "prune_then_distill"}), 422, "ipc")


def prune_then_distill_spec(dataset_id: str) -> dict[str, Any]:
    return tiny_distill_spec(dataset_id, "prune_then_distill")


def invalid(base: Callable[[str], dict[str, Any]], cases: list[tuple[dict[str, Any], str]]) -> list[Any]:
    return [pytest.param(base, change, field, id=f"{base.__name__}-{field}") for change, field in cases]


@pytest.mark.parametrize(
    ("base", "change", "field"),
    invalid(
        tiny_distill_spec,
        [
            ({"method": "magic"}, "method"),
            ({"ipc": 0}, "ipc"),
            ({"iterations": 0}, "iterations"),
            ({"init": "pruned"}, "init"),  # pruned initialisation is its own kind
            ({"surprise": True}, "surprise"),
            ({"width": 0}, "width"),
            ({"schedule": {"initial_ratio": 0.75, "addition_end_epoch": 4}}, "schedule"),  # dm trains no experts
            ({"method": "pad", "schedule": {"initial_ratio": 0, "addition_end_epoch": 4}}, "schedule.initial_ratio"),
            ({"method": "pad", "trajectory": {"max_start_epoch_final": -1}}, "trajectory.max_start_epoch_final"),
            ({"model": "vgg"}, "model"),
            ({"fiem_ratio": 1.0}, "fiem_ratio"),
            ({"model": "mlp", "fiem_ratio": 0.25}, "fiem_ratio"),  # DM's FIEM drops shallow ConvNet blocks
            ({"fiex_ratio": 1.0}, "fiex_ratio"),
            ({"method": "pad", "fiex_ratio": 0.2}, "fiex_ratio"),  # trajectory methods filter through the schedule
            ({"lr_images": 0}, "lr_images"),
            ({"evaluation": {"seeds": 0}}, "evaluation.seeds"),
            ({"evaluation": {"archs": ["vgg"]}}, "evaluation.archs.0"),
            ({"evaluation": {"keep": 3}}, "evaluation.keep"),
            ({"trajectory": TINY_TRAJECTORY}, "trajectory"),  # DM has no trajectories
            ({"experts": TINY_EXPERTS}, "experts"),
            ({"gradient": {"outer_loop": 1}}, "gradient"),
            ({"soft_labels": True}, "soft_labels"),  # soft labels come from expert logits
            ({"distribution": {"batch_real": 0}}, "distribution.batch_real"),
            ({"checkpoint_every": 0}, "checkpoint_every"),
            ({"device": "tpu"}, "device"),
            ({"dataset_id": "ds_missing"}, "dataset_id"),
        ],
    )
    + invalid(
        trajectory_spec,
        [
            ({"trajectory": {"syn_steps": 0}}, "trajectory.syn_steps"),
            ({"trajectory": {"lr": -1}}, "trajectory.lr"),
            ({"experts": {"count": 0}}, "experts.count"),
            ({"experts": {"epochs": 1}}, "experts.epochs"),
            ({"trajectory": {"expert_epochs": 3}, "experts": {"epochs": 3}}, "experts.epochs"),  # M epochs ahead must exist
            ({"distribution": {"batch_real": 64}}, "distribution"),
        ],
    )
    + invalid(
        prune_then_distill_spec,
        [
            ({"prune_method": "magic"}, "prune_method"),
            ({"mode": "hardest", "window": [0.7, 0.8]}, "window"),  # a window without mode 'window'
            ({"mode": "window", "window": None}, "window"),  # mode 'window' (the default) without a window
            ({"mode": "window", "window": [0.8, 0.7]}, "window"),
            ({"mode": "window", "window": [0.7, 0.71], "ipc": 2}, "window"),  # holds 1 sample per class
            ({"mode": "sideways"}, "mode"),
            ({"ccs_hard_cutoff": 1.0}, "ccs_hard_cutoff"),
            ({"init": "real"}, "init"),
            ({"proxy": {"epochs": 0}}, "proxy.epochs"),
        ],
    ),
)
def test_invalid_spec_names_the_field(
    client: TestClient,
    dataset_id: str,
    base: Callable[[str], dict[str, Any]],
    change: dict[str, Any],
    field: str,
) -> None:
    assert_problem(client.post("/v1/jobs", json=base(dataset_id) | change), 422, field)


def test_window_must_hold_ipc_in_every_class(client: TestClient, dataset: dict[str, Any]) -> None:
    # Each class's starting images are ranks floor(0.7 n) .. ceil(0.8 n) of its own ranking.
    holds = min(math.ceil(0.8 * n) - math.floor(0.7 * n) for n in train_counts(dataset))
    spec = tiny_distill_spec(dataset["id"], "prune_then_distill", mode="window", window=[0.7, 0.8], ipc=holds)
    assert client.post("/v1/jobs", json=spec).status_code == 202
    assert_problem(client.post("/v1/jobs", json=spec | {"ipc": holds + 1}), 422, "window")
