"""``/v1/datasets``: uploads, built-ins, validation failures that leave nothing behind, paging, deletion."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.core.config import Settings
from app.core.db import Database
from app.core.ids import DATASET, new_id
from app.models import Dataset
from tests.service_fixtures import (  # noqa: F401 - fixtures
    backend,
    assert_problem,
    client,
    local_client,
    db,
    random_npz_bytes,
    real_subset_npz,
    settings,
    tiny_prune_spec,
)


def stored_blobs(settings: Settings) -> list[Path]:
    return [p for p in settings.blob_root.rglob("*") if p.is_file()]


def dataset_rows(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(Dataset)) or 0


def assert_nothing_stored(settings: Settings, db: Database) -> None:
    assert stored_blobs(settings) == []
    assert dataset_rows(db) == 0


def upload(client: TestClient, content: bytes, filename: str = "data.npz", **data: str):
    return client.post("/v1/datasets", files={"file": (filename, content, "application/octet-stream")}, data=data)


class TestCreateDataset:
    def test_upload_real_npz(self, client: TestClient, settings: Settings, real_subset_npz: Path) -> None:
        content = real_subset_npz.read_bytes()
        response = upload(client, content, "mnist-subset.npz")
        assert response.status_code == 201, response.text
        body = response.json()
        assert response.headers["location"] == f"/v1/datasets/{body['id']}"
        assert body["status"] == "ready" and body["format"] == "npz" and body["name"] == "mnist-subset"
        assert body["content_hash"] == hashlib.sha256(content).hexdigest()
        assert body["size_bytes"] == len(content)
        assert body["num_classes"] == len(body["classes"]) == 10
        assert body["num_samples"] == body["splits"]["train"] + body["splits"]["test"]
        assert body["splits"]["source"] == "provided"
        assert sum(c["train"] for c in body["classes"]) == body["splits"]["train"]
        assert body["image_shape"][0] == 1
        assert len(stored_blobs(settings)) == 1

    def test_name_field_overrides_the_file_stem(self, client: TestClient) -> None:
        assert upload(client, random_npz_bytes(), name="my data").json()["name"] == "my data"

    def test_duplicate_upload_returns_the_existing_record(self, client: TestClient, settings: Settings) -> None:
        first = upload(client, random_npz_bytes(), "a.npz")
        second = upload(client, random_npz_bytes(), "b.npz")
        assert (first.status_code, second.status_code) == (201, 200)
        assert first.json()["id"] == second.json()["id"]
        assert len(stored_blobs(settings)) == 1

    def test_builtin_by_name(self, client: TestClient) -> None:
        first = client.post("/v1/datasets", json={"builtin": "digits"})
        assert first.status_code == 201
        assert first.json()["builtin"] == "digits" and first.json()["format"] == "builtin"
        again = client.post("/v1/datasets", json={"builtin": "digits"})
        assert again.status_code == 200 and again.json()["id"] == first.json()["id"]

    def test_unknown_builtin(self, client: TestClient) -> None:
        assert_problem(client.post("/v1/datasets", json={"builtin": "imagenet"}), 422, "builtin")

    def test_builtin_body_refuses_unknown_fields(self, client: TestClient) -> None:
        assert_problem(client.post("/v1/datasets", json={"builtin": "digits", "extra": 1}), 422, "extra")

    @pytest.mark.parametrize("cut", [0.5, 0.9])
    def test_truncated_file(
        self, client: TestClient, settings: Settings, db: Database, real_subset_npz: Path, cut: float
    ) -> None:
        content = real_subset_npz.read_bytes()
        body = assert_problem(upload(client, content[: int(len(content) * cut)]), 422)
        assert body["errors"][0]["field"] and body["errors"][0]["hint"]
        assert_nothing_stored(settings, db)

    @pytest.mark.parametrize("content", [b"not a dataset at all" * 50, b"\x89PNG\r\n\x1a\n" + bytes(200), b""])
    def test_wrong_content(self, client: TestClient, settings: Settings, db: Database, content: bytes) -> None:
        assert_problem(upload(client, content), 422)
        assert_nothing_stored(settings, db)

    def test_npz_with_bad_labels(self, client: TestClient, settings: Settings, db: Database) -> None:
        import io

        import numpy as np

        buffer = io.BytesIO()
        np.savez(buffer, x=np.zeros((10, 1, 4, 4), np.uint8), y=np.arange(7))  # 10 images, 7 labels
        assert_problem(upload(client, buffer.getvalue()), 422)
        assert_nothing_stored(settings, db)

    def test_malformed_multipart(self, client: TestClient, settings: Settings, db: Database) -> None:
        response = client.post(
            "/v1/datasets", content=b"--xyz\r\nnonsense", headers={"content-type": "multipart/form-data; boundary=xyz"}
        )
        assert_problem(response, 422)
        assert_nothing_stored(settings, db)

    def test_missing_file_part(self, client: TestClient) -> None:
        assert_problem(client.post("/v1/datasets", data={"name": "x"}, files={"other": ("a", b"1")}), 422, "file")

    def test_unsupported_media_type(self, client: TestClient) -> None:
        assert_problem(client.post("/v1/datasets", content=b"x", headers={"content-type": "text/plain"}), 415)


class TestUploadLimit:
    @pytest.fixture
    def small_client(self, settings: Settings) -> Iterator[TestClient]:
        with local_client(settings.model_copy(update={"max_upload_bytes": 4096})) as test_client:
            yield test_client

    def test_oversize_upload_is_refused(self, small_client: TestClient, settings: Settings, db: Database) -> None:
        body = assert_problem(upload(small_client, random_npz_bytes(n=400, side=16)), 413)
        assert "4096" in body["detail"]
        assert_nothing_stored(settings, db)

    def test_limit_is_enforced_while_streaming(
        self, small_client: TestClient, settings: Settings, db: Database
    ) -> None:
        # A chunked body announces no length, so only the streaming counter can stop it.
        def chunks() -> Iterator[bytes]:
            yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.npz"\r\n\r\n'
            for _ in range(64):
                yield bytes(1024)
            yield b"\r\n--b--\r\n"

        response = small_client.post(
            "/v1/datasets", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"}
        )
        assert_problem(response, 413)
        assert_nothing_stored(settings, db)


class TestReadDatasets:
    def test_cursor_pagination(self, client: TestClient) -> None:
        ids = [upload(client, random_npz_bytes(seed=i)).json()["id"] for i in range(3)]
        first = client.get("/v1/datasets", params={"limit": 2}).json()
        assert [d["id"] for d in first["data"]] == ids[::-1][:2]
        second = client.get("/v1/datasets", params={"limit": 2, "cursor": first["next_cursor"]}).json()
        assert [d["id"] for d in second["data"]] == [ids[0]] and second["next_cursor"] is None

    def test_read_one(self, client: TestClient) -> None:
        created = upload(client, random_npz_bytes()).json()
        assert client.get(f"/v1/datasets/{created['id']}").json() == created

    def test_unknown_id(self, client: TestClient) -> None:
        assert_problem(client.get(f"/v1/datasets/{new_id(DATASET)}"), 404)


class TestDeleteDataset:
    def test_delete_removes_record_and_blob(self, client: TestClient, settings: Settings) -> None:
        created = upload(client, random_npz_bytes()).json()
        assert client.delete(f"/v1/datasets/{created['id']}").status_code == 204
        assert_problem(client.get(f"/v1/datasets/{created['id']}"), 404)
        assert stored_blobs(settings) == []

    def test_refused_while_a_job_is_queued(self, client: TestClient) -> None:
        dataset_id = upload(client, random_npz_bytes()).json()["id"]
        job = client.post("/v1/jobs", json=tiny_prune_spec(dataset_id)).json()
        assert_problem(client.delete(f"/v1/datasets/{dataset_id}"), 409)
        client.post(f"/v1/jobs/{job['id']}/cancel")
        assert client.delete(f"/v1/datasets/{dataset_id}").status_code == 204
        assert client.get(f"/v1/jobs/{job['id']}").json()["dataset_id"] is None  # history kept

    def test_unknown_id(self, client: TestClient) -> None:
        assert_problem(client.delete(f"/v1/datasets/{new_id(DATASET)}"), 404)

    def test_job_for_a_deleted_dataset_is_refused(self, client: TestClient) -> None:
        dataset_id = upload(client, random_npz_bytes()).json()["id"]
        assert client.delete(f"/v1/datasets/{dataset_id}").status_code == 204
        body = assert_problem(client.post("/v1/jobs", json=tiny_prune_spec(dataset_id)), 422, "dataset_id")
        assert dataset_id in body["detail"] and "does not exist" in body["detail"]
