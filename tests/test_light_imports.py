"""The API process lists and checks the pruning scores without importing torch, scikit-learn or scipy: the
names, defaults and bounds come from light modules, and each accumulator is imported only when a run needs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.scores import get_score, score_names
from engine.scores.base import ScoreAccumulator

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "sklearn", "scipy")


def test_listing_and_checking_the_scores_imports_nothing_heavy() -> None:
    code = (
        "import sys, engine.scores\n"
        "assert engine.scores.score_names()\n"
        "assert engine.scores.check_score_params('tdds', {}, 10) == []\n"
        "engine.scores.describe_params()\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", [n for n in score_names() if get_score(n).implementation is not None])
def test_every_named_accumulator_resolves(name: str) -> None:
    accumulator = get_score(name).accumulator
    assert isinstance(accumulator, type) and issubclass(accumulator, ScoreAccumulator)
