"""``/v1/jobs``: submission (validation, idempotency, doorbell), listing, cancellation and events."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from app.core.celery_client import create_celery
from app.core.config import Settings
from app.core.db import Database
from app.core.ids import JOB, new_id
from app.models import Dataset, DatasetStatus, utcnow
from app.services import jobs
from app.services.doorbell import Doorbell
from tests.service_fixtures import (  # noqa: F401 - fixtures
    backend,
    assert_problem,
    client,
    local_client,
    db,
    random_npz_bytes,
    settings,
    tiny_prune_spec,
)


@pytest.fixture
def dataset_id(client: TestClient) -> str:
    response = client.post("/v1/datasets", files={"file": ("d.npz", random_npz_bytes(n=120, classes=3))})
    return response.json()["id"]


def submit(client: TestClient, spec: dict[str, Any], key: str | None = None):
    return client.post("/v1/jobs", json=spec, headers={"Idempotency-Key": key} if key else {})


class TestCreateJob:
    def test_queued_with_location(self, client: TestClient, settings: Settings, dataset_id: str) -> None:
        response = submit(client, tiny_prune_spec(dataset_id))
        assert response.status_code == 202, response.text
        job = response.json()
        assert response.headers["location"] == f"/v1/jobs/{job['id']}"
        assert job["status"] == "queued" and job["attempt"] == 0 and job["artifacts"] == []
        assert job["spec"]["method"] == "el2n" and job["spec"]["proxy"]["lr"] == 0.05  # defaults filled in
        assert "task" not in json.dumps(job)  # Celery's ids stay internal
        if settings.broker_url.startswith("filesystem://"):
            messages = list((settings.broker_folder / "queue").glob("*.cpu.msg"))
            assert len(messages) == 1 and job["id"] in messages[0].read_text()

    def test_idempotency_key_returns_the_same_job(self, client: TestClient, dataset_id: str) -> None:
        first = submit(client, tiny_prune_spec(dataset_id), key="retry-1")
        second = submit(client, tiny_prune_spec(dataset_id), key="retry-1")
        assert first.json()["id"] == second.json()["id"]
        assert len(client.get("/v1/jobs").json()["data"]) == 1

    def test_idempotency_key_with_another_body(self, client: TestClient, dataset_id: str) -> None:
        submit(client, tiny_prune_spec(dataset_id), key="retry-2")
        body = assert_problem(submit(client, tiny_prune_spec(dataset_id, keep_fraction=0.5), key="retry-2"), 422)
        assert "Idempotency-Key" in body["detail"]

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"method": "magic"}, "method"),
            ({"keep_fraction": 1.5}, "keep_fraction"),
            ({"keep_fraction": 0}, "keep_fraction"),
            ({"keep_fraction": None, "keep_count": 0}, "keep_count"),
            ({"keep_fraction": None, "keep_count": 10_000}, "keep_count"),
            ({"surprise": True}, "surprise"),
            ({"proxy": {"epochs": 0}}, "proxy.epochs"),
            ({"proxy": {"optimizer": "adam"}}, "proxy.optimizer"),
            ({"evaluation": {"seeds": 100}}, "evaluation.seeds"),
            ({"device": "tpu"}, "device"),
            ({"mode": "ccs", "ccs_hard_cutoff": 1.0}, "ccs_hard_cutoff"),
            ({"dataset_id": "ds_missing"}, "dataset_id"),
            ({"dataset_id": "ds_\u0000"}, "dataset_id"),  # PostgreSQL refuses NUL in text: found by the fuzz test
            ({"kind": "compress"}, "kind"),
        ],
    )
    def test_invalid_spec_names_the_field(
        self, client: TestClient, dataset_id: str, change: dict[str, Any], field: str
    ) -> None:
        assert_problem(submit(client, tiny_prune_spec(dataset_id) | change), 422, field)

    @pytest.mark.parametrize(
        "change",
        [{"keep_fraction": None}, {"mode": "window"}, {"window": [0.2, 0.5]}, {"mode": "window", "window": [0.6, 0.5]}],
    )
    def test_inconsistent_spec(self, client: TestClient, dataset_id: str, change: dict[str, Any]) -> None:
        assert_problem(submit(client, tiny_prune_spec(dataset_id) | change), 422)

    def test_accepted_while_the_broker_is_down(self, settings: Settings, db: Database, dataset_id: str) -> None:
        broken = settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
        with local_client(broken) as broken_client:
            response = submit(broken_client, tiny_prune_spec(dataset_id))
        assert response.status_code == 202  # the job is committed; only the doorbell is missing
        job_id = response.json()["id"]
        rung_before = utcnow() - timedelta(seconds=settings.doorbell_stale_s)
        with db.session() as session:
            assert jobs.unrung_jobs(session, rung_before) == [(job_id, "cpu")]
        doorbell = Doorbell(create_celery(settings), db, settings.doorbell_stale_s)
        assert doorbell.reap() == [job_id]  # a reaper with a broker rings it
        with db.session() as session:
            assert jobs.unrung_jobs(session, rung_before) == []

    def test_dataset_must_be_ready(self, client: TestClient, db: Database, dataset_id: str) -> None:
        with db.session() as session:
            session.execute(update(Dataset).where(Dataset.id == dataset_id).values(status=DatasetStatus.VALIDATING))
        assert_problem(submit(client, tiny_prune_spec(dataset_id)), 422, "dataset_id")

    def test_device_routes_to_a_queue(self, settings: Settings) -> None:
        with local_client(settings.model_copy(update={"gpu_worker_available": True})) as gpu_client:
            dataset = gpu_client.post("/v1/datasets", files={"file": ("d.npz", random_npz_bytes())}).json()
            jobs_by_device = {d: submit(gpu_client, tiny_prune_spec(dataset["id"], device=d)).json() for d in ("cuda", "cpu")}
        if settings.broker_url.startswith("filesystem://"):
            for device, queue in (("cuda", "gpu"), ("cpu", "cpu")):
                messages = (settings.broker_folder / "queue").glob(f"*.{queue}.msg")
                assert any(jobs_by_device[device]["id"] in m.read_text() for m in messages)


class TestReadJobs:
    def test_filters_and_pagination(self, client: TestClient, dataset_id: str) -> None:
        ids = [submit(client, tiny_prune_spec(dataset_id, seed=i)).json()["id"] for i in range(3)]
        client.post(f"/v1/jobs/{ids[0]}/cancel")
        page = client.get("/v1/jobs", params={"limit": 2}).json()
        assert [j["id"] for j in page["data"]] == [ids[2], ids[1]]
        rest = client.get("/v1/jobs", params={"limit": 2, "cursor": page["next_cursor"]}).json()
        assert [j["id"] for j in rest["data"]] == [ids[0]] and rest["next_cursor"] is None
        assert [j["id"] for j in client.get("/v1/jobs", params={"status": "canceled"}).json()["data"]] == [ids[0]]
        assert len(client.get("/v1/jobs", params={"dataset_id": dataset_id, "kind": "prune"}).json()["data"]) == 3
        assert client.get("/v1/jobs", params={"dataset_id": "other"}).json()["data"] == []
        assert_problem(client.get("/v1/jobs", params={"dataset_id": "ds_\x00"}), 422, "query.dataset_id")

    def test_bad_filter(self, client: TestClient) -> None:
        assert_problem(client.get("/v1/jobs", params={"status": "sleeping"}), 422, "query.status")

    def test_unknown_id(self, client: TestClient) -> None:
        assert_problem(client.get(f"/v1/jobs/{new_id(JOB)}"), 404)


class TestCancelJob:
    def test_queued_job_is_canceled_at_once(self, client: TestClient, dataset_id: str) -> None:
        job = submit(client, tiny_prune_spec(dataset_id)).json()
        canceled = client.post(f"/v1/jobs/{job['id']}/cancel")
        assert canceled.status_code == 200
        assert canceled.json()["status"] == "canceled" and canceled.json()["finished_at"]
        assert_problem(client.post(f"/v1/jobs/{job['id']}/cancel"), 409)

    def test_unknown_id(self, client: TestClient) -> None:
        assert_problem(client.post(f"/v1/jobs/{new_id(JOB)}/cancel"), 404)


class TestJobEvents:
    def test_json_listing_with_after_cursor(self, client: TestClient, dataset_id: str) -> None:
        job = submit(client, tiny_prune_spec(dataset_id)).json()
        client.post(f"/v1/jobs/{job['id']}/cancel")
        events = client.get(f"/v1/jobs/{job['id']}/events.json").json()["data"]
        assert [e["data"]["status"] for e in events] == ["queued", "canceled"]
        later = client.get(f"/v1/jobs/{job['id']}/events.json", params={"after": events[0]["id"]}).json()
        assert [e["id"] for e in later["data"]] == [events[1]["id"]]
        page = client.get(f"/v1/jobs/{job['id']}/events.json", params={"limit": 1}).json()
        assert page["next_cursor"] == str(events[0]["id"])

    def test_sse_stream_ends_when_the_job_has_finished(self, client: TestClient, dataset_id: str) -> None:
        job = submit(client, tiny_prune_spec(dataset_id)).json()
        client.post(f"/v1/jobs/{job['id']}/cancel")
        with client.stream("GET", f"/v1/jobs/{job['id']}/events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = [line for line in response.iter_lines() if line]
        kinds = [line.split(": ", 1)[1] for line in lines if line.startswith("event:")]
        assert kinds == ["status", "status"]
        data = [json.loads(line.split(": ", 1)[1]) for line in lines if line.startswith("data:")]
        assert data[-1]["data"]["status"] == "canceled"

    def test_sse_resumes_after_last_event_id(self, client: TestClient, dataset_id: str) -> None:
        job = submit(client, tiny_prune_spec(dataset_id)).json()
        client.post(f"/v1/jobs/{job['id']}/cancel")
        first_id = client.get(f"/v1/jobs/{job['id']}/events.json").json()["data"][0]["id"]
        with client.stream("GET", f"/v1/jobs/{job['id']}/events", headers={"Last-Event-ID": str(first_id)}) as response:
            ids = [line.split(": ", 1)[1] for line in response.iter_lines() if line.startswith("id:")]
        assert ids == [str(first_id + 1)]

    def test_unknown_id(self, client: TestClient) -> None:
        unknown = new_id(JOB)
        assert_problem(client.get(f"/v1/jobs/{unknown}/events"), 404)
        assert_problem(client.get(f"/v1/jobs/{unknown}/events.json"), 404)
