"""An unhandled error answers 500 problem+json and keeps the client's keep-alive connection open, on a
real uvicorn server (TestClient has no connections to lose)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from app.core.config import Settings
from app.main import create_app
from tests.service_fixtures import (  # noqa: F401 - fixtures
    assert_problem,
    backend,
    bearer,
    served_in_thread,
    settings,
)


@pytest.fixture
def crashing_server(settings: Settings) -> Iterator[str]:
    """The service's app, with one more route that raises, behind uvicorn in a thread."""
    app = create_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    with served_in_thread(app) as port:
        yield f"http://127.0.0.1:{port}"


def local_port(response: httpx.Response) -> int:
    """The client's end of the TCP connection that carried ``response``."""
    return int(response.extensions["network_stream"].get_extra_info("client_addr")[1])


def test_a_crash_keeps_the_connection(
    crashing_server: str, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    headers = bearer(settings.local_key_file.read_text().strip())
    with caplog.at_level(logging.ERROR, "app.core.problems"), httpx.Client(
        base_url=crashing_server, headers=headers, timeout=10
    ) as client:
        crash = client.get("/boom")
        body = assert_problem(crash, 500)
        assert "secret" not in body["detail"]
        after = client.get("/v1/jobs")
        assert after.status_code == 200, after.text
        assert local_port(after) == local_port(crash), "the server closed the connection after the 500"
        assert client.get("/boom").status_code == 500 and client.get("/healthz").status_code == 200
    # Still logged, with its traceback.
    assert "unhandled error on GET /boom" in caplog.text and "RuntimeError: secret internals" in caplog.text
