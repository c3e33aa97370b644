"""Range errors of an artifact download are problems like every other error: 400 for a malformed
Range, 416 (with ``Content-Range: bytes */<size>``) for one past the end; good ranges still work."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.service_fixtures import (  # noqa: F401 - fixtures
    assert_problem,
    backend,
    client,
    settings,
)
from tests.test_api_artifacts import job  # noqa: F401 - fixture


@pytest.mark.parametrize("value", ["bytes", "items=0-10", "bytes=20-10", "bytes=-", "bytes=a-b"])
def test_malformed_range_is_a_problem_400(client: TestClient, job: dict, value: str) -> None:
    url = f"/v1/jobs/{job['id']}/artifacts/scores.npy"
    body = assert_problem(client.get(url, headers={"Range": value}), 400, field="header.Range")
    assert body["type"] == "urn:condense:problem:range-invalid"
    assert value in body["detail"] and "bytes=0-1023" in body["detail"]


def test_unsatisfiable_range_is_a_problem_416(client: TestClient, job: dict) -> None:
    url = f"/v1/jobs/{job['id']}/artifacts/scores.npy"
    size = len(client.get(url).content)
    for method in ("GET", "HEAD"):
        response = client.request(method, url, headers={"Range": f"bytes={size}-"})
        assert response.status_code == 416
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.headers["content-range"] == f"bytes */{size}"
    body = assert_problem(client.get(url, headers={"Range": f"bytes={size + 10}-"}), 416, field="header.Range")
    assert body["type"] == "urn:condense:problem:range-not-satisfiable" and str(size) in body["detail"]


def test_good_ranges_and_if_range_still_work(client: TestClient, job: dict) -> None:
    url = f"/v1/jobs/{job['id']}/artifacts/scores.npy"
    full = client.get(url)
    two = client.get(url, headers={"Range": "bytes=0-3,8-11"})
    assert two.status_code == 206 and two.headers["content-type"].startswith("multipart/byteranges")
    # A stale If-Range means "send it all": the bad range is then not looked at.
    stale = client.get(url, headers={"Range": "bytes=20-10", "If-Range": '"old"'})
    assert stale.status_code == 200 and stale.content == full.content
    fresh = client.get(url, headers={"Range": "bytes=0-3", "If-Range": full.headers["etag"]})
    assert fresh.status_code == 206 and fresh.content == full.content[:4]
