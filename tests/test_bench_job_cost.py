"""bench.job_cost times a job as a worker runs it, from a job spec."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench_command import run_bench


@pytest.mark.slow
def test_the_job_cost_benchmark_times_a_short_prune_job(shared_datasets: Path, tmp_path: Path) -> None:
    run_bench("job_cost", "--jobs", "short prune job (keep 10%)", shared_datasets=shared_datasets, results=tmp_path)
    rows = json.loads((tmp_path / "job-cost-cpu.json").read_text())["rows"]
    assert [r["job"] for r in rows] == ["short prune job (keep 10%)"]
    assert 0 < rows[0]["evaluation_seconds"] < rows[0]["seconds"]
    assert "| short prune job (keep 10%) |" in (tmp_path / "job-cost-cpu.md").read_text()
