"""``/v1/jobs/{id}/artifacts/{name}``: content types, ETag/If-None-Match, byte ranges."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.core.ids import JOB, new_id
from tests.service_fixtures import (  # noqa: F401 - fixtures
    backend,
    assert_problem,
    client,
    run_job_in_process,
    run_to_success,
    settings,
    tiny_prune_spec,
)

EXPECTED = {
    "scores.npy": "application/octet-stream",
    "ranking.npy": "application/octet-stream",
    "indices.npy": "application/octet-stream",
    "kept.csv": "text/csv; charset=utf-8",
    "scores.csv": "text/csv; charset=utf-8",
    "indices.json": "application/json",
    "coreset.npz": "application/zip",
    "subset.zip": "application/zip",
    "samples.json": "application/json",
    "report.json": "application/json",
    "preview.png": "image/png",
}


@pytest.fixture
def job(client: TestClient, settings: Settings) -> dict:
    dataset_id = client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    job_id = client.post("/v1/jobs", json=tiny_prune_spec(dataset_id, evaluation=None)).json()["id"]
    run_job_in_process(settings, job_id)
    return client.get(f"/v1/jobs/{job_id}").json()


def test_every_artifact_downloads_with_its_metadata(client: TestClient, job: dict) -> None:
    assert job["status"] == "succeeded", job["error"]
    assert {a["name"]: a["content_type"] for a in job["artifacts"]} == EXPECTED
    for artifact in job["artifacts"]:
        response = client.get(artifact["url"])
        assert response.status_code == 200
        assert response.headers["content-type"] == artifact["content_type"]
        assert int(response.headers["content-length"]) == artifact["size_bytes"] == len(response.content)
        assert response.headers["etag"] == f'"{artifact["sha256"]}"'
        assert hashlib.sha256(response.content).hexdigest() == artifact["sha256"]
        assert artifact["name"] in response.headers["content-disposition"]
    indices = np.load(io.BytesIO(client.get(f"/v1/jobs/{job['id']}/artifacts/indices.npy").content))
    assert json.loads(client.get(f"/v1/jobs/{job['id']}/artifacts/indices.json").content)["indices"] == indices.tolist()


def test_if_none_match_gives_304(client: TestClient, job: dict) -> None:
    url = f"/v1/jobs/{job['id']}/artifacts/report.json"
    etag = client.get(url).headers["etag"]
    not_modified = client.get(url, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.content == b"" and not_modified.headers["etag"] == etag
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    head = client.head(url)
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == etag
    assert int(head.headers["content-length"]) > 0


def test_range_requests(client: TestClient, job: dict) -> None:
    url = f"/v1/jobs/{job['id']}/artifacts/scores.npy"
    full = client.get(url).content
    partial = client.get(url, headers={"Range": "bytes=10-19"})
    assert partial.status_code == 206
    assert partial.content == full[10:20]
    assert partial.headers["content-range"] == f"bytes 10-19/{len(full)}"
    tail = client.get(url, headers={"Range": "bytes=-8"})
    assert tail.status_code == 206 and tail.content == full[-8:]
    unsatisfiable = client.get(url, headers={"Range": f"bytes={len(full) + 10}-"})
    assert unsatisfiable.status_code == 416
    assert unsatisfiable.headers["content-range"] == f"bytes */{len(full)}"


def test_unknown_artifact_and_job(client: TestClient, job: dict) -> None:
    assert_problem(client.get(f"/v1/jobs/{job['id']}/artifacts/secrets.txt"), 404)
    assert_problem(client.get(f"/v1/jobs/{new_id(JOB)}/artifacts/report.json"), 404)


def test_deleting_a_dataset_keeps_an_artifact_with_the_same_bytes(client: TestClient, job: dict) -> None:
    """A coreset uploaded back as a dataset shares the artifact's content-addressed blob."""
    url = f"/v1/jobs/{job['id']}/artifacts/coreset.npz"
    coreset = client.get(url).content
    uploaded = client.post("/v1/datasets", files={"file": ("coreset.npz", coreset)})
    assert uploaded.status_code == 201, uploaded.text
    assert client.delete(f"/v1/datasets/{uploaded.json()['id']}").status_code == 204
    again = client.get(url)
    assert again.status_code == 200
    assert again.content == coreset


def test_a_job_s_artifacts_are_listed_with_what_each_is_and_come_in_one_zip(client: TestClient, settings: Settings) -> None:
    dataset_id = client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    job = run_to_success(client, settings, tiny_prune_spec(dataset_id, evaluation=None))
    listing = client.get(f"/v1/jobs/{job['id']}/artifacts").json()
    assert {a["name"] for a in listing["data"]} == {a["name"] for a in job["artifacts"]}
    assert all(a["description"] for a in listing["data"])  # every file the engine writes is described
    response = client.get(listing["zip_url"])
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        for artifact in listing["data"]:
            data = archive.read(f"{job['id']}/{artifact['name']}")
            assert hashlib.sha256(data).hexdigest() == artifact["sha256"]
    etag = response.headers["ETag"]
    assert client.get(listing["zip_url"], headers={"If-None-Match": etag}).status_code == 304
    queued = client.post("/v1/jobs", json=tiny_prune_spec(dataset_id)).json()
    assert_problem(client.get(f"/v1/jobs/{queued['id']}/artifacts.zip"), 409)
