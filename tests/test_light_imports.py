"""The API process and ``condense --help`` import neither torch, scikit-learn nor scipy (issue 35 point 4): the
names, defaults and bounds they offer come from light modules (configs and registries), and what runs a job
(an accumulator, a matcher, a model, a pipeline) is imported only when a job needs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.scores import get_score, score_names
from engine.scores.base import ScoreAccumulator

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "sklearn", "scipy")


def imported_heavy(code: str, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    """Which of ``heavy`` a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    found: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return found


def test_listing_and_checking_the_scores_imports_nothing_heavy() -> None:
    assert imported_heavy(
        "import engine.scores\n"
        "assert engine.scores.score_names()\n"
        "assert engine.scores.check_score_params('tdds', {}, 10) == []\n"
        "engine.scores.describe_params()"
    ) == []


def test_the_api_process_imports_no_torch() -> None:
    """The app, its schemas (every score, method, model, format and family option) and its OpenAPI document."""
    assert imported_heavy("from app.main import app\napp.openapi()") == []


def test_the_cli_help_imports_no_torch_and_no_service_stack() -> None:
    """``condense --help`` and each command's help: what makes them answer in well under a second
    (README, "What is here"); the jobs and the service commands import the rest when they run."""
    code = (
        "from typer.testing import CliRunner\n"
        "from cli.main import app\n"
        "for args in ([], ['prune'], ['distill'], ['admin'], ['demo']):\n"
        "    assert CliRunner().invoke(app, [*args, '--help']).exit_code == 0, args\n"
    )
    assert imported_heavy(code, (*HEAVY, "sqlalchemy", "alembic", "celery", "fastapi")) == []


@pytest.mark.parametrize("name", [n for n in score_names() if get_score(n).implementation is not None])
def test_every_named_accumulator_resolves(name: str) -> None:
    accumulator = get_score(name).accumulator
    assert isinstance(accumulator, type) and issubclass(accumulator, ScoreAccumulator)
