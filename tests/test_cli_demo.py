"""``condense demo``: the API and a worker on the embedded defaults prune digits, and the result it prints
ends with the gain over random and its verdict (issue 34.4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.evaluate.verdict import describe

pytestmark = pytest.mark.slow  # starts a real API and worker


def test_demo_prints_the_gain_with_its_verdict(tmp_path: Path) -> None:
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "demo", "--seeds", "1", "--proxy-epochs", "1", "--eval-epochs", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    verdict = json.loads((out / "report.json").read_text())["gain_over_random"]["verdict"]
    assert verdict["verdict"] == "not enough seeds to tell" and verdict["seeds"] == 1
    line = describe(verdict, what="a random subset of the same size")
    assert f"Pruned subset, trained from the same seeds as the random one: {line}\n" in proc.stdout
