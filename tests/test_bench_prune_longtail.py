"""bench.prune_longtail runs end to end on a small long-tailed MNIST and records both random baselines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.prune_longtail import CANDIDATES, summary
from tests.bench_command import run_bench


@pytest.mark.slow
def test_the_long_tailed_benchmark_runs_and_pairs_every_candidate_with_both_baselines(
    shared_datasets: Path, tmp_path: Path
) -> None:
    run_bench("prune_longtail", "--datasets", "mnist", "--ratios", "10", "--keeps", "0.3", "--seeds", "2",
              "--largest", "30", shared_datasets=shared_datasets, results=tmp_path)
    block = json.loads((tmp_path / "prune-longtail-cpu.json").read_text())["results"][0]
    assert block["class_sizes"][0] == 30 and block["class_sizes"][-1] == 3 and block["ratio"] == 10
    keep = block["keeps"][0]
    assert len(keep["uniform"]) == 2 and set(keep["same_counts"]) == {"proportional", "sqrt", "equal"}
    rows = {row["candidate"]: row for row in keep["rows"]}
    assert set(rows) == set(CANDIDATES)
    # Proportional keeps 9 of the largest class; with a limit of 50 per class nothing changes at this size.
    assert rows["proportional allocation"]["counts"] == rows["proportional, CCS above 50 per class"]["counts"]
    assert rows["default (auto)"]["allocation"] == "equal" and rows["default (auto)"]["counts"][-1] == 3  # kept whole
    for row in rows.values():
        assert {"same_counts", "uniform"} <= set(row["gain"]) and row["gain"]["uniform"]["seeds"] == 2
    assert set(summary(block)) == set(CANDIDATES) and all(isinstance(s["meets_bar"], bool) for s in summary(block).values())
    assert "| 30% | uniform random |" in (tmp_path / "prune-longtail-cpu.md").read_text()
