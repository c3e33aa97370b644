"""API keys and tenant isolation: every ``/v1`` endpoint, walked with no key, a revoked key and
another tenant's key, sees none of the owner's datasets, jobs or artifacts."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.core.db import Database
from app.main import create_app
from app.models import ApiKey
from tests.service_fixtures import (  # noqa: F401 - fixtures
    api_operations,
    assert_problem,
    backend,
    bearer,
    client,
    client_for_tenant,
    db,
    other_client,
    random_npz_bytes,
    run_job_in_process,
    settings,
    tiny_prune_spec,
)


@pytest.fixture
def owned(client: TestClient, settings: Settings) -> dict[str, str]:
    """The local tenant's dataset, finished job and one of its artifacts."""
    upload = client.post("/v1/datasets", files={"file": ("mine.npz", random_npz_bytes())})
    assert upload.status_code == 201, upload.text
    dataset_id = upload.json()["id"]
    job_id = client.post("/v1/jobs", json=tiny_prune_spec(dataset_id, evaluation=None)).json()["id"]
    run_job_in_process(settings, job_id)
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded", job["error"]
    run_id = client.get("/v1/proxy-runs").json()["data"][0]["id"]  # the proxy run the job recorded
    return {"dataset_id": dataset_id, "job_id": job_id, "name": "report.json", "run_id": run_id}


def v1_operations(client: TestClient) -> set[tuple[str, str]]:
    """(method, path template) of every /v1 route the app serves, HEAD-only routes included."""
    return {(method, path) for method, path in api_operations(client.app) if path.startswith("/v1")}  # type: ignore[arg-type]


def call(client: TestClient, method: str, template: str, ids: dict[str, str]) -> Any:
    path = template.format(**ids)
    body: dict[str, Any] = {}
    if (method, template) == ("POST", "/v1/jobs"):
        body["json"] = tiny_prune_spec(ids["dataset_id"])
    elif (method, template) == ("POST", "/v1/datasets"):
        body["json"] = {"builtin": "digits"}
    return client.request(method, path, **body)


def test_another_tenant_sees_nothing_on_any_endpoint(
    client: TestClient, other_client: TestClient, owned: dict[str, str]
) -> None:
    walked = set()
    for method, template in sorted(v1_operations(client)):
        response = call(other_client, method, template, owned)
        walked.add((method, template))
        if "{" in template:
            assert response.status_code == 404, (method, template, response.text)
            if method != "HEAD":
                assert response.json()["type"] == "urn:condense:problem:not-found"
        elif (method, template) in {("GET", "/v1/datasets"), ("GET", "/v1/jobs"), ("GET", "/v1/proxy-runs")}:
            assert response.status_code == 200
            assert not {item["id"] for item in response.json()["data"]} & set(owned.values())
        elif (method, template) == ("POST", "/v1/jobs"):
            assert_problem(response, 422, "dataset_id")  # the owner's dataset does not exist for others
        elif (method, template) == ("POST", "/v1/datasets"):
            assert response.status_code == 201  # its own, separate record
            assert response.json()["id"] != owned["dataset_id"]
        elif (method, template) == ("GET", "/v1/methods"):
            assert response.status_code == 200  # the engine's registries: nobody's data
        else:
            raise AssertionError(f"no expectation for {method} {template}: add one")
    assert walked == v1_operations(client)
    # Nothing the stranger did touched the owner's objects.
    job = client.get(f"/v1/jobs/{owned['job_id']}").json()
    assert job["status"] == "succeeded" and not job["cancel_requested"] and job["artifacts"]
    assert client.get(f"/v1/datasets/{owned['dataset_id']}").status_code == 200
    assert [d["id"] for d in client.get("/v1/datasets").json()["data"]] == [owned["dataset_id"]]
    assert [r["id"] for r in client.get("/v1/proxy-runs").json()["data"]] == [owned["run_id"]]


def test_the_same_upload_by_two_tenants_is_two_datasets(
    client: TestClient, other_client: TestClient, owned: dict[str, str]
) -> None:
    theirs = other_client.post("/v1/datasets", files={"file": ("same.npz", random_npz_bytes())})
    assert theirs.status_code == 201 and theirs.json()["id"] != owned["dataset_id"]
    # Deleting theirs keeps the owner's file, which has the same bytes.
    assert other_client.delete(f"/v1/datasets/{theirs.json()['id']}").status_code == 204
    spec = tiny_prune_spec(owned["dataset_id"], evaluation=None)
    assert client.post("/v1/jobs", json=spec).status_code == 202


def test_idempotency_keys_are_per_tenant(client: TestClient, other_client: TestClient) -> None:
    mine = client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    theirs = other_client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    headers = {"Idempotency-Key": "nightly-1"}
    first = client.post("/v1/jobs", json=tiny_prune_spec(mine), headers=headers)
    second = other_client.post("/v1/jobs", json=tiny_prune_spec(theirs), headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] != second.json()["id"]


@pytest.mark.parametrize("authorization", [None, "Bearer nonsense", "Bearer key_unknown.secret", "Basic dXNlcjpwdw=="])
def test_every_endpoint_needs_a_valid_key(
    client: TestClient, owned: dict[str, str], authorization: str | None
) -> None:
    anonymous = TestClient(client.app, raise_server_exceptions=False)
    if authorization:
        anonymous.headers["Authorization"] = authorization
    for method, template in v1_operations(client):
        response = call(anonymous, method, template, owned)
        assert response.status_code == 401, (method, template)
        assert response.headers["www-authenticate"] == "Bearer"
        if method != "HEAD":
            assert_problem(response, 401)
    for path in ("/healthz", "/readyz", "/openapi.json"):
        assert anonymous.get(path).status_code == 200


def test_keys_are_stored_only_as_hashes_and_revoked_keys_stop_working(client: TestClient, db: Database) -> None:
    from app.services.auth import create_key, revoke_key

    with db.session() as session:
        key, token = create_key(session, "acme")
    secret = token.partition(".")[2]
    acme = TestClient(client.app, raise_server_exceptions=False, headers=bearer(token))
    assert acme.get("/v1/jobs").status_code == 200
    with db.session() as session:
        row = session.get(ApiKey, key.id)
        assert row is not None and secret not in {row.secret_sha256, row.id} and len(row.secret_sha256) == 64
        assert revoke_key(session, key.id)
    assert_problem(acme.get("/v1/jobs"), 401)
    # A key with the right id and a wrong secret is refused as well.
    forged = TestClient(client.app, raise_server_exceptions=False, headers=bearer(f"{key.id}.{secret[::-1]}"))
    assert_problem(forged.get("/v1/jobs"), 401)


def test_admin_commands_create_and_revoke_keys(client: TestClient, settings: Settings) -> None:
    env = {**os.environ, "CONDENSE_DATA_DIR": str(settings.data_dir), "CONDENSE_DATABASE_URL": settings.database_url}

    def admin(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "cli", "admin", *args]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)

    created = admin("create-key", "--tenant", "acme")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()  # stdout holds only the key, for scripts
    acme = TestClient(client.app, raise_server_exceptions=False, headers=bearer(token))
    assert acme.get("/v1/datasets").status_code == 200
    listed = admin("list-keys")
    assert token.partition(".")[0] in listed.stderr and token.partition(".")[2] not in listed.stderr
    assert admin("revoke-key", token.partition(".")[0]).returncode == 0
    assert acme.get("/v1/datasets").status_code == 401
    assert admin("revoke-key", token.partition(".")[0]).returncode == 1  # already revoked: said, not ignored


def test_the_embedded_default_keeps_its_local_key(settings: Settings) -> None:
    with TestClient(create_app(settings)):
        token = settings.local_key_file.read_text().strip()
    assert oct(settings.local_key_file.stat().st_mode & 0o777) == "0o600"
    with TestClient(create_app(settings)) as again:  # a restart reuses the key it saved
        assert settings.local_key_file.read_text().strip() == token
        assert again.get("/v1/jobs", headers=bearer(token)).status_code == 200


def test_auth_off_is_loud_and_refused_in_production(
    settings: Settings, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_settings = settings.model_copy(update={"auth": "off"})
    with caplog.at_level(logging.WARNING), TestClient(create_app(open_settings)) as anonymous:
        assert anonymous.post("/v1/datasets", json={"builtin": "digits"}).status_code == 201
        assert len(anonymous.get("/v1/datasets").json()["data"]) == 1
    assert "AUTHENTICATION IS OFF" in caplog.text
    assert not settings.local_key_file.exists()  # no key was made: none is needed
    monkeypatch.setenv("CONDENSE_ENVIRONMENT", "production")
    with pytest.raises(ValueError, match="CONDENSE_AUTH=off is refused in production"):
        Settings(auth="off", database_url="postgresql+psycopg://x@127.0.0.1/x", broker_url="redis://127.0.0.1")


def test_a_second_tenant_key_for_the_same_name_acts_for_the_same_tenant(
    client: TestClient, db: Database, owned: dict[str, str]
) -> None:
    second_local = client_for_tenant(client, db, "local")
    assert second_local.get(f"/v1/jobs/{owned['job_id']}").status_code == 200
