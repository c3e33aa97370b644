"""Every request body that is not a multipart upload is capped (CONDENSE_MAX_JSON_BODY_BYTES): a 10 MB job
spec gets 413 problem+json naming the limit before it is parsed, and nothing is stored. Before, it was
read, stored and returned in every listing."""

from __future__ import annotations

import json
import socket

import httpx
import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from tests.service_fixtures import (  # noqa: F401 - fixtures
    assert_problem,
    backend,
    client,
    local_client,
    random_npz_bytes,
    settings,
    tiny_prune_spec,
)
from tests.test_api_crash_keepalive import local_port
from tests.test_api_hostile_uploads import served_port  # noqa: F401 - fixture

LIMIT = Settings.model_fields["max_json_body_bytes"].default
BIG = 10 * 1024 * 1024
JSON = {"content-type": "application/json"}


@pytest.fixture
def dataset_id(client: TestClient) -> str:
    return str(client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"])


def padded_spec(dataset_id: str, size: int) -> bytes:
    """A job spec of about ``size`` bytes: the padding sits in the free-form score_params."""
    return json.dumps(tiny_prune_spec(dataset_id, score_params={"pad": "x" * size})).encode()


def assert_body_too_large(response: httpx.Response) -> None:
    body = assert_problem(response, 413)
    assert body["type"] == "urn:condense:problem:body-too-large"
    assert str(LIMIT) in body["detail"] and "CONDENSE_MAX_JSON_BODY_BYTES" in body["detail"]


def test_a_10_mb_job_spec_is_refused_and_not_stored(client: TestClient, dataset_id: str) -> None:
    assert_body_too_large(client.post("/v1/jobs", content=padded_spec(dataset_id, BIG), headers=JSON))
    assert client.get("/v1/jobs").json()["data"] == []


def test_a_chunked_body_without_length_is_refused(client: TestClient, dataset_id: str) -> None:
    spec = padded_spec(dataset_id, BIG)
    chunks = (spec[start : start + 16 * 1024] for start in range(0, len(spec), 16 * 1024))
    assert_body_too_large(client.post("/v1/jobs", content=chunks, headers=JSON))
    assert client.get("/v1/jobs").json()["data"] == []


def test_the_cap_is_counted_while_the_body_streams(client: TestClient, served_port: int) -> None:
    """A real server answers a chunked body (no Content-Length) with 413 once it has read past the cap,
    while the client is still sending: the rest is never waited for."""
    head = f"POST /v1/jobs HTTP/1.1\r\nhost: 127.0.0.1:{served_port}\r\nauthorization: {client.headers['authorization']}"
    head += "\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    chunk = b"%x\r\n%s\r\n" % (16 * 1024, b" " * 16 * 1024)
    with socket.create_connection(("127.0.0.1", served_port), timeout=10) as conn:
        conn.sendall(head.encode() + chunk * (2 * LIMIT // (16 * 1024)))  # twice the cap, unfinished
        answer = b""
        while b"body-too-large" not in answer and (received := conn.recv(65536)):
            answer += received
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"body-too-large" in answer


def test_other_json_bodies_are_capped_too(client: TestClient) -> None:
    builtin = json.dumps({"builtin": "digits" + " " * (LIMIT + 1)})
    assert_body_too_large(client.post("/v1/datasets", content=builtin, headers=JSON))
    assert client.get("/v1/datasets").json()["data"] == []


def test_bodies_under_the_cap_and_multipart_uploads_are_untouched(client: TestClient, dataset_id: str) -> None:
    spec = tiny_prune_spec(dataset_id)
    assert client.post("/v1/jobs", json=spec).status_code == 202
    upload = random_npz_bytes(n=2000)
    assert len(upload) > 2 * LIMIT
    assert client.post("/v1/datasets", files={"file": ("big.npz", upload)}).status_code == 201


def test_the_cap_comes_from_the_settings(settings: Settings, dataset_id: str, client: TestClient) -> None:
    small = settings.model_copy(update={"max_json_body_bytes": 100})
    with local_client(small) as small_client:
        body = assert_problem(small_client.post("/v1/jobs", json=tiny_prune_spec(dataset_id)), 413)
    assert "100 bytes" in body["detail"]


def test_a_real_client_reads_the_413_over_keep_alive(client: TestClient, served_port: int, dataset_id: str) -> None:
    """Over real HTTP the server answers before it has the body, then discards the rest; the client reads
    the 413 (no reset) and its connection still serves the next request."""
    with httpx.Client(base_url=f"http://127.0.0.1:{served_port}", headers=dict(client.headers), timeout=30) as http:
        refused = http.post("/v1/jobs", content=padded_spec(dataset_id, BIG), headers=JSON)
        assert_body_too_large(refused)
        listing = http.get("/v1/jobs")
        assert listing.json()["data"] == [] and local_port(listing) == local_port(refused)
