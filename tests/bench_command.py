"""Runs a ``bench`` module as its own command, the way the benchmarks' READMEs tell a user to."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_bench(module: str, *args: str, shared_datasets: Path, results: Path, timeout: float = 900) -> None:
    """``python -m bench.<module> ARGS --results RESULTS`` from the repository root, reading the datasets
    from ``shared_datasets``; fails the test with the command's stderr tail when it does not exit 0."""
    env = {**os.environ, "CONDENSE_SHARED_DATASETS": str(shared_datasets)}
    proc = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", *args, "--results", str(results)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
