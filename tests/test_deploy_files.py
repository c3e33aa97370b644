"""The production stack files say what the README promises: the services, a GPU worker, named
volumes, settings that the service actually reads, and an image that does not run as root."""

from __future__ import annotations

from pathlib import Path

import yaml

from app.core.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_services_and_volumes() -> None:
    spec = compose()
    assert set(spec["services"]) == {"postgres", "redis", "migrate", "api", "worker"}
    assert {"db", "blobs"} <= set(spec["volumes"])
    worker = spec["services"]["worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert "gpu" in worker["command"][worker["command"].index("--queues") + 1]
    for name in ("api", "worker"):
        depends = spec["services"][name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert any(v.startswith("blobs:") for v in spec["services"][name]["volumes"])


def test_compose_settings_are_real_settings() -> None:
    # A misspelt CONDENSE_ variable would be silently ignored by pydantic-settings.
    fields = {f"CONDENSE_{name.upper()}" for name in Settings.model_fields}
    for service in ("migrate", "api", "worker"):
        env = compose()["services"][service]["environment"]
        assert set(env) <= fields, set(env) - fields
        settings = Settings.from_variables(env)
        assert settings.database_url.startswith("postgresql") and settings.broker_url.startswith("redis://")


def test_image_runs_as_a_non_root_user() -> None:
    lines = [line.split() for line in (ROOT / "Dockerfile").read_text().splitlines() if line.strip()]
    users = [words[1] for words in lines if words[0] == "USER"]
    assert users and users[-1] not in {"root", "0"}
