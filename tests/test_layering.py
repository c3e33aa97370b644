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


def test_the_worker_maps_no_spec_and_writes_no_export() -> None:
    """The worker claims, runs, reports and stores: the spec-to-config mapping is app.services.job_configs (one
    for every caller) and the exports are the engine results' ``write``, so no worker module imports an engine
    config, a config field helper or a writer of files."""
    import ast

    forbidden = ("_config", "engine.select.config", "engine.config_fields", "engine.atomic", "engine.data.export")
    found = {}
    for path in sorted((REPO / "worker").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("engine."):
                if any(part in node.module for part in forbidden):
                    found.setdefault(path.name, []).append(node.module)
    assert found == {}
