"""Checks that used to come too late: a job the worker could never run (unknown or malformed score
parameters, a proxy run too short for its score, a GPU no worker serves, a non-finite number) is
refused at submission with a 422 naming the field, instead of a 202 and a failure (or an endless wait
holding a tenant slot) later in the worker."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.service_fixtures import (  # noqa: F401 - fixtures
    assert_problem,
    backend,
    client,
    random_npz_bytes,
    settings,
    tiny_distill_spec,
    tiny_prune_spec,
)


@pytest.fixture
def dataset_id(client: TestClient) -> str:
    response = client.post("/v1/datasets", files={"file": ("d.npz", random_npz_bytes(n=120, classes=3))})
    return str(response.json()["id"])


def scored(dataset_id: str, method: str, epochs: int = 3, **score_params: Any) -> dict[str, Any]:
    proxy = {"epochs": epochs, "width": 8, "batch_size": 64}
    return tiny_prune_spec(dataset_id, method=method, proxy=proxy, score_params=score_params)


def message_of(body: dict[str, Any], field: str) -> str:
    return next(e["message"] for e in body["errors"] if e["field"] == field)


@pytest.mark.parametrize(
    ("method", "epochs", "params", "field", "says"),
    [
        ("tdds", 3, {"windw": 3}, "score_params.windw", "known: window, beta, start_epoch, end_epoch"),
        ("tdds", 3, {"win\x00dow": 3}, "score_params.win\\x00dow", "known: window"),
        ("aum", 3, {"window": 3}, "score_params.window", "aum takes no parameters"),
        ("tdds", 3, {"window": "ten"}, "score_params.window", "must be an integer"),
        ("tdds", 3, {"window": 2.5}, "score_params.window", "must be an integer"),
        ("tdds", 3, {"window": True}, "score_params.window", "must be an integer"),
        ("tdds", 3, {"window": [3]}, "score_params.window", "must be an integer"),
        ("tdds", 3, {"beta": "high"}, "score_params.beta", "must be a number"),
        ("tdds", 3, {"window": 2}, "score_params.window", "must be >= 3"),
        ("tdds", 3, {"beta": 0}, "score_params.beta", "must be > 0"),
        ("tdds", 3, {"beta": 1.5}, "score_params.beta", "must be <= 1"),
        ("tdds", 1, {}, "proxy.epochs", "at least 3"),
        ("tdds", 2, {}, "proxy.epochs", "at least 3"),
        ("tdds", 3, {"end_epoch": 4}, "score_params.end_epoch", "past the last epoch (3)"),
        ("tdds", 3, {"start_epoch": 2}, "score_params.start_epoch", "at least 3"),
        ("dyn_unc", 1, {}, "proxy.epochs", "at least 2"),
        ("eva", 2, {}, "proxy.epochs", "at least 3"),
        ("eva", 6, {"early_start": 4}, "score_params.early_start", "after the early window's end"),
        ("el2n", 3, {"epoch": 5}, "score_params.epoch", "past the last epoch (3)"),
        ("grand", 3, {"seeds": 21}, "score_params.seeds", "must be <= 20"),
        ("el2n", 3, {"seeds": 0}, "score_params.seeds", "must be >= 1"),
    ],
)
def test_score_params_the_worker_cannot_run_are_refused(
    client: TestClient, dataset_id: str, method: str, epochs: int, params: dict[str, Any], field: str, says: str
) -> None:
    body = assert_problem(client.post("/v1/jobs", json=scored(dataset_id, method, epochs, **params)), 422, field)
    assert says in message_of(body, field), body
    assert client.get("/v1/jobs").json()["data"] == []  # nothing queued


# Long enough to matter in every listing, short enough to pass the 64 KiB body cap and reach the checks.
LONG = 60_000


@pytest.mark.parametrize(
    ("params", "field"),
    [({"window": "x" * LONG}, "score_params.window"), ({"w" * LONG: 3}, None)],
    ids=["long-value", "long-key"],
)
def test_a_long_score_param_is_refused_briefly(
    client: TestClient, dataset_id: str, params: dict[str, Any], field: str | None
) -> None:
    response = client.post("/v1/jobs", json=scored(dataset_id, "tdds", **params))
    body = assert_problem(response, 422, field)
    assert body["errors"][0]["field"].startswith("score_params.")
    assert len(response.content) < 2000  # the answer quotes neither the value nor the whole name


def test_a_10_mb_score_param_is_refused_before_it_is_parsed(client: TestClient, dataset_id: str) -> None:
    response = client.post("/v1/jobs", json=scored(dataset_id, "tdds", window="x" * 10_000_000))
    assert_problem(response, 413)
    assert response.json()["type"].endswith("body-too-large")
    assert client.get("/v1/jobs").json()["data"] == []


@pytest.mark.parametrize(
    ("method", "epochs", "params"),
    [
        ("tdds", 4, {"window": 3, "beta": 0.5, "start_epoch": 2}),
        ("tdds", 3, {}),
        ("tdds", 10, {"window": 50, "end_epoch": 10}),  # a window longer than the range is capped at it
        ("dyn_unc", 2, {"window": 2}),
        ("eva", 3, {}),
        ("eva", 6, {"early_start": 2, "early_end": 3, "late_start": 5}),
        ("el2n", 3, {"epoch": 2, "seeds": 2}),
        ("el2n", 1, {}),
        ("forgetting", 1, {}),
        ("tdds", 3, {"beta": 1}),
    ],
)
def test_valid_score_params_are_accepted(
    client: TestClient, dataset_id: str, method: str, epochs: int, params: dict[str, Any]
) -> None:
    response = client.post("/v1/jobs", json=scored(dataset_id, method, epochs, **params))
    assert response.status_code == 202, response.text
    assert response.json()["spec"]["score_params"] == params


def test_prune_then_distill_checks_the_proxy_run_of_its_prune_method(client: TestClient, dataset_id: str) -> None:
    spec = tiny_distill_spec(dataset_id, "prune_then_distill", prune_method="tdds")  # a 1-epoch proxy run
    body = assert_problem(client.post("/v1/jobs", json=spec), 422, "proxy.epochs")
    assert "tdds" in message_of(body, "proxy.epochs")
    longer = spec | {"proxy": {"epochs": 3, "width": 8, "batch_size": 64}}
    assert client.post("/v1/jobs", json=longer).status_code == 202


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("keep_fraction",), "NaN", "keep_fraction"),
        (("proxy", "lr"), "Infinity", "proxy.lr"),
        (("score_params", "beta"), "NaN", "score_params.beta"),
    ],
)
def test_non_finite_numbers_are_refused_as_such(
    client: TestClient, dataset_id: str, path: tuple[str, ...], value: str, field: str
) -> None:
    spec = scored(dataset_id, "tdds")
    target = spec
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = 0.125  # a placeholder replaced by the bare token json.dumps would write for NaN / inf
    raw = json.dumps(spec).replace("0.125", value)
    response = client.post("/v1/jobs", content=raw, headers={"Content-Type": "application/json"})
    body = assert_problem(response, 422, field)
    assert "finite" in message_of(body, field), body


def test_cuda_without_a_gpu_worker_is_refused(client: TestClient, dataset_id: str) -> None:
    body = assert_problem(client.post("/v1/jobs", json=tiny_prune_spec(dataset_id, device="cuda")), 422, "device")
    assert "CONDENSE_GPU_WORKER_AVAILABLE=true" in message_of(body, "device")
    assert client.get("/v1/jobs").json()["data"] == []  # no job holds a tenant slot waiting for a GPU
    distill = tiny_distill_spec(dataset_id, device="cuda")
    assert_problem(client.post("/v1/jobs", json=distill), 422, "device")

