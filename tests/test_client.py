"""The Python client (``from condense import Client``) against a live API and a real worker, and its retries
against a scripted transport."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import httpx
import pytest

from condense import Client, CondenseError, JobFailed
from tests.service_fixtures import (  # noqa: F401 - fixtures
    LiveService,
    backend,
    live_service,
    tiny_distill_spec,
    tiny_prune_spec,
)
from tests.test_data_loaders import class_images, write_zip


def _token(live: LiveService) -> str:
    return live.client.headers["Authorization"].removeprefix("Bearer ")


@pytest.fixture(scope="module")
def pets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    members = class_images("train/", {"cat": 20, "dog": 20, "owl": 20}) | class_images("test/", {"cat": 4, "dog": 4, "owl": 4})
    return write_zip(tmp_path_factory.mktemp("pets") / "pets.zip", members)


@pytest.mark.slow
def test_a_prune_job_through_the_client_names_its_kept_files(
    live_service: LiveService, pets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONDENSE_URL", live_service.base_url)
    monkeypatch.setenv("CONDENSE_API_KEY", _token(live_service))
    with Client() as client:  # from the environment
        dataset = client.datasets.upload(pets, progress=True)
        assert dataset.classes == ["cat", "dog", "owl"] and client.datasets.upload(pets).id == dataset.id
        assert dataset.id in {d.id for d in client.datasets.list()} and client.datasets.get(dataset.id).name == "pets"

        job = client.jobs.submit(tiny_prune_spec(dataset.id, method="el2n", keep_fraction=0.25))
        assert job.wait(progress=True) is job and job.status == "succeeded"
        assert job.id in {j.id for j in client.jobs.list(kind="prune")}

        kept = job.kept()
        assert len(kept["source"]) == len(job.indices()) == 15
        assert sorted(kept["index"].tolist()) == sorted(job.indices().tolist())
        assert all(s.startswith(f"train/{c}/") for s, c in zip(kept["source"], kept["class_name"], strict=True))
        assert kept["rank"].tolist() == sorted(kept["rank"].tolist())

        files = job.download(tmp_path)
        assert {p.name for p in files} == set(job.artifacts) and {"kept.csv", "subset.zip"} <= set(job.artifacts)
        # A download cut short is resumed with a Range request and checked against the artifact's sha256.
        scores = tmp_path / "scores.csv"
        whole = scores.read_bytes()
        scores.write_bytes(whole[: len(whole) // 3])
        job.download(tmp_path, names=["scores.csv"])
        assert scores.read_bytes() == whole
        with open(scores, newline="") as f:
            assert {r["source"] for r in csv.DictReader(f) if r["selected"] == "1"} == set(kept["source"].tolist())

        with zipfile.ZipFile(job.download_zip(tmp_path / "all.zip")) as archive:
            assert {n.split("/", 1)[1] for n in archive.namelist()} == set(job.artifacts)

        statuses = [e["data"]["status"] for e in client.jobs.events(job.id) if e["type"] == "status"]
        assert statuses == ["queued", "running", "succeeded"]

        with pytest.raises(CondenseError) as refused:
            client.jobs.submit(tiny_prune_spec(dataset.id, keep_fraction=2.0))
        assert refused.value.status == 422 and "keep_fraction" in (refused.value.field or "")

        job.delete()
        with pytest.raises(CondenseError) as gone:
            client.jobs.get(job.id)
        assert gone.value.status == 404


@pytest.mark.slow
def test_a_distill_job_through_the_client_gives_tensors_and_a_failure_raises(live_service: LiveService) -> None:
    with Client(live_service.base_url, _token(live_service)) as client:
        dataset = client.datasets.builtin("digits")
        job = client.jobs.submit(tiny_distill_spec(dataset.id)).wait()
        images, labels = job.synthetic()
        assert tuple(images.shape) == (20, 1, 8, 8) and len(labels) == 20
        with zipfile.ZipFile(io.BytesIO(job.read("synthetic_png.zip"))) as archive:
            assert len(archive.namelist()) == 20 and "0/0_0000.png" in archive.namelist()

        canceled = client.jobs.submit(tiny_distill_spec(dataset.id, iterations=10_000)).cancel()
        with pytest.raises(JobFailed):
            canceled.wait()
        assert canceled.status == "canceled"


def test_busy_answers_are_retried_after_what_retry_after_asks() -> None:
    calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers.get("Authorization", ""))
        if len(calls) < 3:
            return httpx.Response(503 if len(calls) == 1 else 429, headers={"Retry-After": "0"},
                                  json={"title": "busy"})
        return httpx.Response(200, json={"scores": []})

    client = Client("http://condense.test", "k", transport=httpx.MockTransport(answer))
    assert client.methods() == {"scores": []} and calls == ["Bearer k"] * 3

    refused = Client("http://condense.test", "k", retries=1, transport=httpx.MockTransport(
        lambda r: httpx.Response(503, headers={"Retry-After": "0"}, json={"title": "unavailable", "detail": "db"})))
    with pytest.raises(CondenseError) as error:
        refused.methods()
    assert error.value.status == 503 and error.value.detail == "db"


def test_the_local_server_s_key_is_found_without_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "api-key").write_text("local-key\n")
    monkeypatch.setenv("CONDENSE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("CONDENSE_API_KEY", raising=False)
    monkeypatch.delenv("CONDENSE_URL", raising=False)
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization", ""))
        return httpx.Response(200, json={})

    Client(transport=httpx.MockTransport(answer)).methods()  # the default URL is this machine
    Client("https://condense.example.com", transport=httpx.MockTransport(answer)).methods()
    assert seen == ["Bearer local-key", ""]
