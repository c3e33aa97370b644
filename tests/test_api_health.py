"""Probes, OpenAPI, and problem+json for errors that no route raises itself (404, 405, 500)."""

from __future__ import annotations

import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from sqlalchemy import text

from app.core.config import Settings
from app.core.db import Database
from app.main import create_app
from tests.service_fixtures import assert_problem, backend, client, settings  # noqa: F401 - fixtures


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_reports_each_dependency(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {name: {"status": "ok"} for name in ("database", "broker", "blob_store")}


def test_readyz_fails_when_the_broker_is_down(settings: Settings) -> None:
    unreachable = settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    with TestClient(create_app(unreachable)) as test_client:
        response = test_client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(settings.retry_after_s)
    assert response.json()["unavailable"] == ["broker"]
    checks = response.json()["checks"]
    assert checks["broker"]["status"] == "error" and checks["database"]["status"] == "ok"


def test_openapi_documents_the_api(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert {"/v1/datasets", "/v1/jobs", "/v1/jobs/{job_id}/events", "/v1/jobs/{job_id}/artifacts/{name}"} <= schema[
        "paths"
    ].keys()
    assert client.get("/docs").status_code == 200


def test_unknown_route_and_method(client: TestClient) -> None:
    assert_problem(client.get("/v1/nothing-here"), 404)
    assert_problem(client.put("/v1/jobs"), 405)


def test_crash_is_a_problem_500(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as test_client:
        body = assert_problem(test_client.get("/boom"), 500)
    assert "secret" not in body["detail"]


@pytest.mark.parametrize("dependency", ["database", "broker"])
def test_unreachable_dependency_is_a_problem_503(settings: Settings, dependency: str) -> None:
    # Port 1 refuses connections: a real connection attempt fails the way a stopped server does.
    app = create_app(settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"}))

    @app.get("/touch")
    def touch(request: Request) -> None:
        if dependency == "database":
            Database("postgresql+psycopg://postgres@127.0.0.1:1/condense", timeout_s=1).ping()
        else:
            request.app.state.doorbell.ping()

    with TestClient(app, raise_server_exceptions=False) as test_client:
        response = test_client.get("/touch")
    body = assert_problem(response, 503)
    assert body["type"] == "urn:condense:problem:dependency-unavailable" and dependency in body["detail"]
    assert response.headers["Retry-After"] == str(settings.retry_after_s)


def test_a_refused_statement_is_still_a_500(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/bad-sql")
    def bad_sql(request: Request) -> None:
        with request.app.state.db.session() as session:
            session.execute(text("SELECT * FROM no_such_table"))  # a bug, not an outage

    with TestClient(app, raise_server_exceptions=False) as test_client:
        assert_problem(test_client.get("/bad-sql"), 500)
