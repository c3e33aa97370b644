"""The API's first start makes the local user's key: its log says where the key is and which one it is,
never the secret (logs are shipped and kept where the key file's 0600 does not reach)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from app import launch
from app.core.config import Settings
from tests.service_fixtures import backend, service_environment  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow


def test_the_api_log_names_the_key_file_not_the_key(tmp_path: Path, backend: str) -> None:  # noqa: F811
    overrides = service_environment(tmp_path / "data", backend)
    settings = Settings.from_variables(overrides)
    port = launch.free_port()
    log_path = tmp_path / "api.log"
    api = launch.start_api(launch.service_env(overrides, isolated=True), port, log_path)
    try:
        launch.wait_ready(f"http://127.0.0.1:{port}", api)
        headers = launch.local_auth_headers(settings.data_dir)  # as `condense demo` and the tests find it
        assert httpx.get(f"http://127.0.0.1:{port}/v1/jobs", headers=headers).status_code == 200
    finally:
        launch.stop(api)
    token = settings.local_key_file.read_text().strip()
    key_id, _, secret = token.partition(".")
    log = log_path.read_text()
    assert secret not in log, "the API logged the local key's secret"
    assert str(settings.local_key_file) in log and key_id in log, log
