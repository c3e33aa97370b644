"""Property-based fuzzing of the whole API from its own OpenAPI document (schemathesis): whatever a
client sends, the service answers without a 5xx, and every documented response matches its schema.

The requests go over HTTP to a real uvicorn process (no worker: fuzzed jobs stay queued rather than
occupy the machine); the example budget keeps the run to about a minute per backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

from app import launch
from app.main import app
from tests.service_fixtures import backend, service_environment  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow
schema = schemathesis.openapi.from_dict(app.openapi())


@dataclass
class Api:
    base_url: str
    headers: dict[str, str]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[Api]:
    root = tmp_path_factory.mktemp("fuzz")
    # Fuzzed submissions would soon reach the per-tenant job limit and only ever see 429 after it.
    overrides = service_environment(root / "data", backend) | {"CONDENSE_TENANT_MAX_ACTIVE_JOBS": "100000"}
    env = launch.service_env(overrides, isolated=True)
    port = launch.free_port()
    proc = launch.start_api(env, port, root / "api.log")
    try:
        launch.wait_ready(f"http://127.0.0.1:{port}", proc)
        yield Api(f"http://127.0.0.1:{port}", launch.local_auth_headers(Path(root / "data")))
    finally:
        launch.stop(proc)
        log = (root / "api.log").read_text()
        if "Traceback" in log:
            print(log[-8000:])


@schema.parametrize()
@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_and_responses_match_the_schema(case: schemathesis.Case, api: Api) -> None:
    case.call_and_validate(
        base_url=api.base_url, headers=api.headers, checks=[not_a_server_error, response_schema_conformance, content_type_conformance]
    )
