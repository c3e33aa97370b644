"""End to end: requests that race on one dataset, many times, from real concurrent clients of a real API.

Each try starts two requests at the same instant (a barrier), with a different small offset between
them each time so the tries sweep across the window in which they overlap. Run on both backends; on
the code before the row locks of app/services/locks.py and app/services/blobs.py these failed (see
the note on issue 16 for the counts).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from app.blobstore import LocalBlobStore
from app.core.db import Database
from app.services.auth import create_key
from tests.service_fixtures import (  # noqa: F401 - fixtures
    TERMINAL,
    LiveService,
    backend,
    bearer,
    live_service,
    random_npz_bytes,
    tiny_prune_spec,
    wait_for_job,
)

pytestmark = pytest.mark.slow
TRIES = 40
# Offsets (s) of the second request against the first; both directions, so either may win.
OFFSETS = [0.0, 0.001, 0.002, 0.004, 0.008, -0.001, -0.002, -0.004]


@pytest.fixture(scope="module")
def other_tenant(live_service: LiveService) -> Iterator[httpx.Client]:
    """A client of a second tenant, with a key of its own."""
    db = Database(live_service.settings.database_url)
    with db.session() as session:
        _, token = create_key(session, "tenant-b")
    db.dispose()
    with httpx.Client(base_url=live_service.base_url, timeout=30, headers=bearer(token)) as client:
        yield client


def at_once(first: Callable[[], httpx.Response], second: Callable[[], httpx.Response], offset: float) -> tuple[
    httpx.Response, httpx.Response
]:
    """Runs both requests in threads released together; ``second`` starts ``offset`` s after ``first``."""
    barrier = threading.Barrier(2)
    results: dict[int, Any] = {}

    def run(slot: int, call: Callable[[], httpx.Response], delay: float) -> None:
        barrier.wait()
        time.sleep(max(0.0, delay))
        try:
            results[slot] = call()
        except BaseException as exc:  # reported below, not lost in the thread
            results[slot] = exc

    threads = [
        threading.Thread(target=run, args=(0, first, -offset)),
        threading.Thread(target=run, args=(1, second, offset)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for result in results.values():
        if isinstance(result, BaseException):
            raise result
    return results[0], results[1]


def upload(client: httpx.Client, data: bytes) -> httpx.Response:
    return client.post("/v1/datasets", files={"file": ("race.npz", data)})


def test_deleting_a_dataset_while_another_tenant_uploads_the_same_bytes_keeps_the_file(
    live_service: LiveService, other_tenant: httpx.Client
) -> None:
    """Tenant A deletes its dataset while tenant B uploads identical bytes: B's dataset must keep its file."""
    a, b = live_service.client, other_tenant
    store = LocalBlobStore(live_service.settings.blob_root)
    lost = []
    for i in range(TRIES):
        data = random_npz_bytes(seed=1000 + i)
        path = store.path_for(store.key_for(hashlib.sha256(data).hexdigest(), ".npz"))
        created = upload(a, data)
        assert created.status_code == 201, created.text
        deleted, uploaded = at_once(
            lambda: a.delete(f"/v1/datasets/{created.json()['id']}"), lambda: upload(b, data), OFFSETS[i % len(OFFSETS)]
        )
        assert deleted.status_code == 204, deleted.text
        assert uploaded.status_code == 201 and uploaded.json()["status"] == "ready", uploaded.text
        if not path.is_file():
            lost.append(i)
        # The last reference gone, the file goes too.
        assert b.delete(f"/v1/datasets/{uploaded.json()['id']}").status_code == 204
        assert not path.exists(), f"try {i}: the blob outlived its last dataset"
    assert not lost, f"B's dataset lost its file in {len(lost)} of {TRIES} tries: {lost}"


ARTIFACT_TRIES = 12


def test_deleting_a_job_while_another_tenant_uploads_its_coreset_keeps_the_file(
    live_service: LiveService, other_tenant: httpx.Client
) -> None:
    """The same race on an artifact's blob: tenant A deletes a finished job while tenant B uploads the
    job's ``coreset.npz`` bytes as a dataset (artifacts and datasets share content-addressed blobs)."""
    a, b = live_service.client, other_tenant
    store = LocalBlobStore(live_service.settings.blob_root)
    lost = []
    for i in range(ARTIFACT_TRIES):
        dataset = upload(a, random_npz_bytes(seed=3000 + i)).json()
        job = a.post("/v1/jobs", json=tiny_prune_spec(dataset["id"], evaluation=None)).json()
        job = wait_for_job(a, job["id"], TERMINAL)
        assert job["status"] == "succeeded", job
        coreset = a.get(f"/v1/jobs/{job['id']}/artifacts/coreset.npz").content
        path = store.path_for(store.key_for(hashlib.sha256(coreset).hexdigest(), ".npz"))
        deleted, uploaded = at_once(
            lambda: a.delete(f"/v1/jobs/{job['id']}"),
            lambda: b.post("/v1/datasets", files={"file": ("coreset.npz", coreset)}),
            OFFSETS[i % len(OFFSETS)],
        )
        assert deleted.status_code == 204, deleted.text
        assert uploaded.status_code == 201, uploaded.text
        if not path.is_file():
            lost.append(i)
        assert b.delete(f"/v1/datasets/{uploaded.json()['id']}").status_code == 204
        assert a.delete(f"/v1/datasets/{dataset['id']}").status_code == 204
    assert not lost, f"B's dataset lost its file in {len(lost)} of {ARTIFACT_TRIES} tries: {lost}"


def test_a_job_created_while_its_dataset_is_deleted_is_new_or_refused(live_service: LiveService) -> None:
    """POST /v1/jobs (no Idempotency-Key) racing DELETE of its dataset: either the job is created and the
    deletion refused (409), or the deletion goes through and the job is refused (422 naming dataset_id);
    never an older job returned as if new, an idempotency error, or a queued job without its dataset."""
    client = live_service.client
    assert live_service.worker is not None
    from app import launch

    launch.stop(live_service.worker)  # the jobs stay queued: "in use" is unambiguous
    try:
        seen: set[str] = set()
        outcomes: dict[str, int] = {"job created, delete refused": 0, "delete done, job refused": 0}
        for i in range(TRIES):
            dataset = upload(client, random_npz_bytes(seed=5000 + i)).json()
            job, deleted = at_once(
                lambda: client.post("/v1/jobs", json=tiny_prune_spec(dataset["id"])),
                lambda: client.delete(f"/v1/datasets/{dataset['id']}"),
                OFFSETS[i % len(OFFSETS)],
            )
            if job.status_code == 202:
                body = job.json()
                assert body["id"] not in seen, f"try {i}: an older job came back as new: {body}"
                assert body["dataset_id"] == dataset["id"] and body["status"] == "queued", body
                assert deleted.status_code == 409, f"try {i}: the dataset was deleted under a queued job"
                assert client.get(f"/v1/jobs/{body['id']}").json()["dataset_id"] == dataset["id"]
                seen.add(body["id"])
                outcomes["job created, delete refused"] += 1
                assert client.post(f"/v1/jobs/{body['id']}/cancel").status_code == 200  # frees the tenant's slot
                assert client.delete(f"/v1/datasets/{dataset['id']}").status_code == 204
            else:
                assert job.status_code == 422, f"try {i}: {job.status_code} {job.text}"
                assert [e["field"] for e in job.json()["errors"]] == ["dataset_id"], job.text
                assert deleted.status_code == 204, deleted.text
                outcomes["delete done, job refused"] += 1
        print(f"outcomes over {TRIES} tries: {outcomes}")
    finally:
        live_service.start_worker()
