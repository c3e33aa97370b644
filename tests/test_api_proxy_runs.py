"""Recorded proxy runs through the API and the worker's runner: a second prune job on the same data reuses
the first job's run, whatever its score and keep; runs are listed, counted in storage and deletable."""

from __future__ import annotations

import json

import pytest

from fastapi.testclient import TestClient

from app.blobstore import LocalBlobStore
from app.core.config import Settings
from app.core.db import Database
from app.models import ProxyRun
from app.services.auth import LOCAL_TENANT, tenant_named
from app.services.quotas import stored_bytes
from tests.service_fixtures import (  # noqa: F401 - fixtures
    assert_problem,
    backend,
    client,
    db,
    other_client,
    random_npz_bytes,
    run_to_success as run,
    settings,
    tiny_prune_spec,
)


def report(client: TestClient, job: dict) -> dict:
    url = next(a["url"] for a in job["artifacts"] if a["name"] == "report.json")
    return json.loads(client.get(url).content)


def test_a_second_prune_job_reuses_the_first_job_s_proxy_run(client: TestClient, settings: Settings, db: Database) -> None:
    dataset_id = client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    first = run(client, settings, tiny_prune_spec(dataset_id, evaluation=None))
    assert first["metrics"]["proxy_run"] == {"reused": False, "trained_by_job": first["id"]}
    listed = client.get("/v1/proxy-runs").json()["data"]
    assert len(listed) == 1
    stored = listed[0]
    assert stored["dataset_id"] == dataset_id and stored["job_id"] == first["id"] and stored["size_bytes"] > 0
    # The tiny job's 1-epoch proxy records every score that can run on one epoch (not TDDS's windows).
    assert {"el2n", "forgetting", "aum", "entropy"} <= set(stored["scores"]) and "tdds" not in stored["scores"]
    assert client.get(f"/v1/proxy-runs/{stored['id']}").json() == stored
    with db.session() as session:
        assert stored_bytes(session, tenant_named(session, LOCAL_TENANT).id) >= stored["size_bytes"] + sum(
            a["size_bytes"] for a in first["artifacts"]
        )

    second = run(client, settings, tiny_prune_spec(dataset_id, method="forgetting", keep_fraction=0.1, mode="hardest",
                                                   evaluation=None))
    assert second["metrics"]["proxy_run"] == {"reused": True, "trained_by_job": first["id"]}
    second_report = report(client, second)
    assert second_report["proxy_run"]["key"] == report(client, first)["proxy_run"]["key"]
    assert second_report["proxy"]["history"] == report(client, first)["proxy"]["history"]
    assert len(client.get("/v1/proxy-runs").json()["data"]) == 1

    # Another proxy setting is another run.
    run(client, settings, tiny_prune_spec(dataset_id, proxy={"epochs": 3, "width": 4}, evaluation=None))
    assert len(client.get("/v1/proxy-runs", params={"dataset_id": dataset_id}).json()["data"]) == 2


def test_a_deleted_proxy_run_frees_its_storage_and_is_trained_again(
    client: TestClient, settings: Settings, db: Database
) -> None:
    dataset_id = client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    run(client, settings, tiny_prune_spec(dataset_id, evaluation=None))
    stored = client.get("/v1/proxy-runs").json()["data"][0]
    with db.session() as session:
        before = stored_bytes(session, tenant_named(session, LOCAL_TENANT).id)
        blob_key = session.get(ProxyRun, stored["id"]).blob_key
    blobs = LocalBlobStore(settings.blob_root)
    assert blobs.exists(blob_key)
    assert client.delete(f"/v1/proxy-runs/{stored['id']}").status_code == 204
    with db.session() as session:
        assert stored_bytes(session, tenant_named(session, LOCAL_TENANT).id) == before - stored["size_bytes"]
    assert not blobs.exists(blob_key)
    assert client.get(f"/v1/proxy-runs/{stored['id']}").status_code == 404
    assert client.delete(f"/v1/proxy-runs/{stored['id']}").json()["type"] == "urn:condense:problem:not-found"
    again = run(client, settings, tiny_prune_spec(dataset_id, evaluation=None))
    assert again["metrics"]["proxy_run"]["reused"] is False


def test_deleting_a_dataset_deletes_the_proxy_runs_recorded_on_it(client: TestClient, settings: Settings, db: Database) -> None:
    kept = client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    upload = client.post("/v1/datasets", files={"file": ("mine.npz", random_npz_bytes())}).json()["id"]
    for dataset_id in (kept, upload):
        run(client, settings, tiny_prune_spec(dataset_id, evaluation=None))
    gone = client.get("/v1/proxy-runs", params={"dataset_id": upload}).json()["data"][0]
    assert client.delete(f"/v1/datasets/{upload}").status_code == 204
    assert [r["dataset_id"] for r in client.get("/v1/proxy-runs").json()["data"]] == [kept]
    assert client.get(f"/v1/proxy-runs/{gone['id']}").status_code == 404
    with db.session() as session:
        assert stored_bytes(session, tenant_named(session, LOCAL_TENANT).id) == sum(
            r["size_bytes"] for r in client.get("/v1/proxy-runs").json()["data"]
        ) + sum(a["size_bytes"] for j in client.get("/v1/jobs").json()["data"] for a in j["artifacts"])


def test_another_tenant_does_not_reuse_a_proxy_run(
    client: TestClient, other_client: TestClient, settings: Settings
) -> None:
    dataset_id = client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    run(client, settings, tiny_prune_spec(dataset_id, evaluation=None))
    theirs = other_client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    job = run(other_client, settings, tiny_prune_spec(theirs, evaluation=None))
    assert job["metrics"]["proxy_run"]["reused"] is False
    assert len(other_client.get("/v1/proxy-runs").json()["data"]) == 1  # its own (the walk in test_api_tenants
    # shows that it sees none of the owner's)


def test_a_sweep_job_returns_its_table_and_curve_and_shares_the_proxy_run(
    client: TestClient, settings: Settings
) -> None:
    dataset_id = client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    tiny = tiny_prune_spec(dataset_id)
    # Prototypes read the proxy's features, not the score: both scores keep the same samples at each keep.
    spec = {"kind": "prune_sweep", "dataset_id": dataset_id, "methods": ["el2n", "forgetting"], "keep_fractions": [0.1, 0.3],
            "mode": "prototypes", "device": "cpu", "proxy": tiny["proxy"], "evaluation": tiny["evaluation"]}
    job = run(client, settings, spec)
    points = job["metrics"]["points"]
    # One row per subset, naming both scores, evaluated once.
    assert [(p["point"], p["methods"], p["keeps"]) for p in points] == [
        ("el2n@0.1, forgetting@0.1", ["el2n", "forgetting"], [0.1, 0.1]),
        ("el2n@0.3, forgetting@0.3", ["el2n", "forgetting"], [0.3, 0.3]),
    ]
    assert all(p["gain_over_random"] == pytest.approx(p["accuracy"] - p["random"]) for p in points)
    assert [p["verdict"] for p in points] == ["not enough seeds to tell"] * 2  # one evaluation seed
    assert [p["overlap"] for p in points] == [None, None]  # alone at its keep
    full = report(client, job)
    assert [e["point"] for e in full["evaluations"]] == [p["point"] for p in points]
    assert [(p["point"], p["row"]) for p in full["points"]] == [
        ("el2n@0.1", 0), ("el2n@0.3", 1), ("forgetting@0.1", 0), ("forgetting@0.3", 1)]
    names = {a["name"]: a["content_type"] for a in job["artifacts"]}
    assert names == {"sweep.json": "application/json", "sweep.csv": "text/csv; charset=utf-8", "report.json": "application/json",
                     "selections.npz": "application/zip", "curve.png": "image/png"}
    assert job["metrics"]["proxy_run"] == {"reused": False, "trained_by_job": job["id"]}
    # A later prune job on the same data and proxy takes the sweep's run.
    later = run(client, settings, tiny_prune_spec(dataset_id, method="aum", evaluation=None))
    assert later["metrics"]["proxy_run"] == {"reused": True, "trained_by_job": job["id"]}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"methods": []}, "methods"),
        ({"methods": ["el2n", "el2n"]}, "methods"),
        ({"keep_fractions": [0.1, 1.0]}, "keep_fractions.1"),
        ({"keep_fractions": [0.2, 0.2]}, "keep_fractions"),
        ({"methods": ["tdds"], "proxy": {"epochs": 1}}, "proxy.epochs"),
        ({"methods": ["nope"]}, "methods.0"),
    ],
)
def test_a_bad_sweep_is_refused_naming_the_field(client: TestClient, change: dict, field: str) -> None:
    dataset_id = client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    assert_problem(client.post("/v1/jobs", json={"kind": "prune_sweep", "dataset_id": dataset_id} | change), 422, field)


def test_random_and_full_data_baselines_are_measured_once_per_protocol(client: TestClient, settings: Settings) -> None:
    dataset_id = client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    evaluation = {"seeds": 1, "epochs": 1, "width": 8, "compare_random": True, "full_data": True}
    first = report(client, run(client, settings, tiny_prune_spec(dataset_id, evaluation=evaluation)))
    second = report(client, run(client, settings, tiny_prune_spec(dataset_id, method="forgetting", evaluation=evaluation)))
    for name in ("random", "full"):
        assert "reused" not in first["evaluation"][name] and second["evaluation"][name]["reused"] is True
        assert second["evaluation"][name]["per_seed"] == first["evaluation"][name]["per_seed"]
    assert "reused" not in second["evaluation"]["subset"]
    # Another evaluation protocol measures its own.
    longer = report(client, run(client, settings, tiny_prune_spec(dataset_id, evaluation=evaluation | {"epochs": 2})))
    assert "reused" not in longer["evaluation"]["random"]
