"""bench.perf end to end at toy size (real MNIST, a real API and worker): the ratios it records are measured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench_command import run_bench


@pytest.mark.slow
def test_every_part_runs_and_the_second_job_reuses_the_first_one_s_proxy_run(shared_datasets: Path, tmp_path: Path) -> None:
    run_bench("perf", "--per-class", "20", "--epochs", "3", "--width", "8", "--repeats", "1", "--batched-widths", "8",
              "--loop-widths", "8", shared_datasets=shared_datasets, results=tmp_path, timeout=600)
    payload = json.loads((tmp_path / "perf-cpu.json").read_text())
    reuse = payload["reuse"]
    assert reuse["first"]["proxy_run"]["reused"] is False and reuse["second"]["proxy_run"]["reused"] is True
    assert reuse["ratio"] == pytest.approx(reuse["second"]["seconds"] / reuse["first"]["seconds"])
    assert reuse["stored_run_bytes"] > 0
    record = payload["record_all"]
    assert set(record["medians"]) == {"every score, stored", "own score only"} and record["ratio"] > 0
    sweep = payload["sweep"]
    assert len(sweep["job_seconds"]) == 15 and sweep["ratio"] == pytest.approx(sweep["sweep_seconds"] / sum(sweep["job_seconds"]))
    batched = payload["batched"]["rows"]
    assert [r["width"] for r in batched] == [8] and all(len(r["accuracy"]["batched"]) == 5 for r in batched)
    loop = payload["loop"]["rows"]
    assert [r["width"] for r in loop] == [8] and loop[0]["ratio"] > 0
    decode = payload["decode"]
    assert decode["samples"] == 70_000 and decode["ratio"] == pytest.approx(decode["medians"]["cache"] / decode["medians"]["decode"])
    assert "Ratio second / first" in (tmp_path / "perf-cpu.md").read_text()
