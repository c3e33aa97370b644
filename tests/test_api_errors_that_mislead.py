"""Issue 36.4: the answers that used to mislead a new user now name the fix."""

from __future__ import annotations

import io
import zipfile

from fastapi.testclient import TestClient

from tests.service_fixtures import (  # noqa: F401 - fixtures
    assert_problem,
    backend,
    client,
    random_npz_bytes,
    settings,
    tiny_prune_spec,
)


def _message(response) -> str:
    return response.json()["errors"][0]["message"]


def test_a_file_sent_under_another_part_name_is_told_to_use_file(client: TestClient) -> None:
    response = client.post("/v1/datasets", files={"data": ("big.npz", random_npz_bytes(n=200))})
    body = assert_problem(response, 422, "file")
    assert "part 'data'" in body["detail"] and "send the dataset as the part 'file'" in body["detail"]


def test_a_job_without_a_json_content_type_is_told_to_send_json(client: TestClient) -> None:
    response = client.post("/v1/jobs", content=b'{"kind": "prune"}', headers={"Content-Type": "text/plain"})
    assert_problem(response, 422)
    assert "Content-Type: application/json" in _message(response)


def test_a_spec_without_kind_lists_the_kinds(client: TestClient) -> None:
    response = client.post("/v1/jobs", json={"dataset_id": "ds_x"})
    assert_problem(response, 422, "kind")
    assert "needs a 'kind': one of distill, prune" in _message(response) and "discriminator" not in _message(response)
    wrong = client.post("/v1/jobs", json={"kind": "shrink", "dataset_id": "ds_x"})
    assert "'kind' must be one of" in _message(wrong) and "'shrink'" in _message(wrong)


def test_an_unknown_field_suggests_the_one_meant(client: TestClient) -> None:
    dataset_id = client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    response = client.post("/v1/jobs", json={**tiny_prune_spec(dataset_id), "keep_frac": 0.2})
    assert_problem(response, 422, "keep_frac")
    assert "did you mean 'keep_fraction'?" in _message(response)


def test_a_truncated_zip_is_called_a_damaged_zip(client: TestClient) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(20):
            archive.writestr(f"cat/{i}.png", bytes(range(256)) * 8)
    response = client.post("/v1/datasets", files={"file": ("pets.zip", buffer.getvalue()[: len(buffer.getvalue()) // 2])})
    body = assert_problem(response, 422, "file")
    assert "damaged zip" in body["detail"] and "not a zip" not in body["detail"]
