"""bench.load runs end to end through the Python client and counts every request, job and refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench_command import run_bench


@pytest.mark.slow
def test_the_load_benchmark_runs_its_clients_and_settles_every_job(shared_datasets: Path, tmp_path: Path) -> None:
    run_bench("load", "--clients", "3", "--seconds", "4", shared_datasets=shared_datasets, results=tmp_path)
    payload = json.loads((tmp_path / "load-embedded.json").read_text())
    assert payload["errors"] == 0 and payload["jobs_lost"] == 0 and payload["jobs_submitted"] >= 3
    assert payload["latency"]["register"]["requests"] == 3 and payload["latency"]["submit"]["requests"] >= 3
    assert sum(payload["jobs_final"].values()) == payload["jobs_submitted"]
