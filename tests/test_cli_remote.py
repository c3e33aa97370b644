"""``condense datasets`` and ``condense jobs`` against a live API and a real worker: through typer's runner and as
the installed command in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cli.main import app
from tests.service_fixtures import (  # noqa: F401 - fixtures
    LiveService,
    backend,
    live_service,
    tiny_distill_spec,
    tiny_prune_spec,
)
from tests.test_data_loaders import class_images, write_zip

pytestmark = pytest.mark.slow


def _env(live: LiveService) -> dict[str, str]:
    return {"CONDENSE_URL": live.base_url,
            "CONDENSE_API_KEY": live.client.headers["Authorization"].removeprefix("Bearer "), "COLUMNS": "80"}


def _condense(live: LiveService, *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("condense")), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, **_env(live)})


def test_upload_submit_watch_and_download_from_the_terminal(live_service: LiveService, tmp_path: Path) -> None:
    members = class_images("train/", {"cat": 15, "dog": 15}) | class_images("test/", {"cat": 3, "dog": 3})
    upload = _condense(live_service, "datasets", "upload", str(write_zip(tmp_path / "pets.zip", members)))
    assert upload.returncode == 0, upload.stderr
    dataset_id = upload.stdout.strip()  # stdout carries only the id, for scripts
    assert dataset_id.startswith("ds_") and "2 classes" in upload.stderr

    runner = CliRunner(env=_env(live_service))
    listed = runner.invoke(app, ["datasets", "list", "--json"])
    assert listed.exit_code == 0 and dataset_id in {d["id"] for d in json.loads(listed.stdout)}
    shown = runner.invoke(app, ["datasets", "show", dataset_id])
    assert shown.exit_code == 0 and "cat" in shown.output and "dog" in shown.output

    spec = tmp_path / "job.yaml"
    spec.write_text(yaml.safe_dump(tiny_prune_spec(dataset_id, keep_fraction=0.2)))
    done = _condense(live_service, "jobs", "submit", "--spec", str(spec), "--wait", "--json")
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert job["status"] == "succeeded" and {"kept.csv", "subset.zip"} <= {a["name"] for a in job["artifacts"]}

    fetched = runner.invoke(app, ["jobs", "download", job["id"], "--out", str(tmp_path / "out")])
    assert fetched.exit_code == 0, fetched.output
    kept = (tmp_path / "out" / "kept.csv").read_text().splitlines()
    assert kept[0].startswith("index,source,label,class_name") and len(kept) == 1 + 6
    assert all(",train/" in line for line in kept[1:])  # the upload's own file names
    watched = runner.invoke(app, ["jobs", "watch", job["id"]])
    assert watched.exit_code == 0 and "succeeded" in watched.output
    assert job["id"] in {j["id"] for j in json.loads(runner.invoke(app, ["jobs", "list", "--json"]).stdout)}

    refused = runner.invoke(app, ["jobs", "submit", "--dataset", dataset_id, "--keep", "0"])
    assert refused.exit_code == 2 and "error in keep_fraction" in refused.output
    anonymous = CliRunner(env={**_env(live_service), "CONDENSE_API_KEY": "wrong"}).invoke(app, ["jobs", "list"])
    assert anonymous.exit_code == 2 and "CONDENSE_API_KEY" in anonymous.output


def test_a_job_that_does_not_succeed_exits_non_zero_with_its_status(live_service: LiveService) -> None:
    runner = CliRunner(env=_env(live_service))
    dataset = json.loads(runner.invoke(app, ["datasets", "list", "--json"]).stdout)
    if not dataset:
        dataset_id = live_service.client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    else:
        dataset_id = dataset[0]["id"]
    queued = runner.invoke(app, ["jobs", "submit", "--dataset", dataset_id, "--kind", "distill", "--ipc", "1"])
    assert queued.exit_code == 0, queued.output
    job_id = queued.stdout.strip().splitlines()[-1]
    assert runner.invoke(app, ["jobs", "cancel", job_id]).exit_code == 0
    watched = runner.invoke(app, ["jobs", "watch", job_id])
    assert watched.exit_code == 1 and "canceled" in watched.output
    deleted = runner.invoke(app, ["jobs", "delete", job_id])
    assert deleted.exit_code == 0
    assert runner.invoke(app, ["jobs", "show", job_id]).exit_code == 2


def test_every_client_command_has_an_example() -> None:
    runner = CliRunner(env={"COLUMNS": "80"})
    for group, commands in {"datasets": ("upload", "list", "show", "delete"),
                            "jobs": ("submit", "watch", "list", "show", "cancel", "delete", "download")}.items():
        for command in commands:
            out = runner.invoke(app, [group, command, "--help"]).output
            assert "Example" in out and f"condense {group} {command}" in out.replace("\n", " "), (group, command)
            assert max(len(line) for line in out.splitlines()) <= 80
