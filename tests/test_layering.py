"""The house's arrows run one way: the API does not import the workers that run its jobs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_api_imports_nothing_from_the_worker() -> None:
    code = "import sys, app.main; print(sorted(m for m in sys.modules if m.split('.')[0] == 'worker'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
