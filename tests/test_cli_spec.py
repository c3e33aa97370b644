"""``condense prune|distill DATA --spec FILE`` runs the job a spec POSTed to /v1/jobs describes, through the API's
schema and the one spec-to-config mapping: the service and the CLI write the same files, the same subset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.core.config import Settings
from cli.main import app as cli
from tests.service_fixtures import (  # noqa: F401 - fixtures
    PRUNE_ARTIFACTS,
    backend,
    client,
    run_job_in_process,
    settings,
    tiny_prune_spec,
)

PRUNE_SPEC: dict[str, Any] = {k: v for k, v in tiny_prune_spec("unused").items() if k != "dataset_id"}


def write_spec(tmp_path: Path, spec: dict[str, Any]) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_the_cli_and_the_service_run_a_spec_alike(client: TestClient, settings: Settings, tmp_path: Path) -> None:
    dataset_id = client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    job_id = client.post("/v1/jobs", json={**PRUNE_SPEC, "dataset_id": dataset_id}).json()["id"]
    run_job_in_process(settings, job_id)
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded", job["error"]

    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "prune", "builtin:digits", "--spec", str(write_spec(tmp_path, PRUNE_SPEC)),
         "--out", str(out)], capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "120"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {p.name for p in out.iterdir() if p.is_file()} == {a["name"] for a in job["artifacts"]} == PRUNE_ARTIFACTS
    served = client.get(f"/v1/jobs/{job_id}/artifacts/indices.npy").content
    (tmp_path / "served.npy").write_bytes(served)
    # The same config from the same spec, on the same data and seed: the same subset.
    assert np.array_equal(np.load(out / "indices.npy"), np.load(tmp_path / "served.npy"))
    served_report = client.get(f"/v1/jobs/{job_id}/artifacts/report.json").json()
    assert json.loads((out / "report.json").read_text())["config"] == served_report["config"]


def test_a_distill_spec_sets_the_family_s_options(tmp_path: Path) -> None:
    spec = {"kind": "distill", "method": "mtt", "ipc": 1, "iterations": 2, "width": 8, "device": "cpu", "init": "real",
            "trajectory": {"syn_steps": 2, "expert_epochs": 1, "max_start_epoch": 1, "lr": 0.02},
            "experts": {"count": 1, "epochs": 3}, "evaluation": None}
    code, output = invoke("distill", "builtin:digits", "--spec", str(write_spec(tmp_path, spec)),
                          "--out", str(tmp_path / "out"))
    assert code == 0, output
    config = json.loads((tmp_path / "out" / "report.json").read_text())["config"]
    assert (config["method"], config["ipc"], config["iterations"]) == ("mtt", 1, 2)
    assert config["options"]["trajectory"]["syn_steps"] == 2 and config["options"]["trajectory"]["lr_init"] == 0.02
    assert config["options"]["experts"]["num_experts"] == 1 and config["evaluation"] is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({**PRUNE_SPEC, "keep_fraction": 2}, "error in keep_fraction: Input should be less than 1"),
        ({**PRUNE_SPEC, "kind": "distill"}, "error in kind: this command runs prune or prune_sweep jobs, not 'distill'"),
        ({**PRUNE_SPEC, "proxy": {"epochs": 1, "depth": 3}}, "error in proxy.depth: Extra inputs are not permitted"),
        ([PRUNE_SPEC], "error in --spec: the file must hold one object"),
    ],
    ids=["bound", "kind", "unknown field", "not an object"],
)
def test_a_bad_spec_names_the_field(tmp_path: Path, spec: Any, message: str) -> None:
    code, output = invoke("prune", "builtin:digits", "--spec", str(write_spec(tmp_path, spec)), "--out", str(tmp_path))
    assert code == 2 and message in " ".join(output.split()), output


def test_job_options_beside_a_spec_are_refused(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, PRUNE_SPEC)
    code, output = invoke("prune", "builtin:digits", "--spec", str(spec), "--keep", "0.5", "--out", str(tmp_path))
    assert code == 2 and "leave out --keep or put them in the spec" in " ".join(output.split()), output
    code, output = invoke("distill", "builtin:digits", "--spec", str(spec), "--trajectory-syn-steps", "3",
                          "--out", str(tmp_path))
    assert code == 2 and "leave out --trajectory-syn-steps" in " ".join(output.split()), output


def test_a_yaml_spec_is_read_like_a_json_one(tmp_path: Path) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(yaml.safe_dump({**PRUNE_SPEC, "keep_fraction": 2}))
    code, output = invoke("prune", "builtin:digits", "--spec", str(spec), "--out", str(tmp_path))
    assert code == 2 and "error in keep_fraction: Input should be less than 1" in " ".join(output.split()), output
    spec.write_text("kind: [prune\n")
    code, output = invoke("prune", "builtin:digits", "--spec", str(spec), "--out", str(tmp_path))
    assert code == 2 and "cannot read" in output and "as YAML" in " ".join(output.split()), output
