"""docs/jobs.md states the defaults a new user pays for; they must be the engine's (issue 36.5)."""

from __future__ import annotations

from pathlib import Path

from engine.data.split import TEST_FRACTION
from engine.pipeline.distill_config import DistillConfig, DistillEvalConfig
from engine.pipeline.prune_config import EvalConfig, ProxyConfig

DOC = (Path(__file__).resolve().parents[1] / "docs" / "jobs.md").read_text()


def test_the_job_guide_quotes_the_engine_s_defaults() -> None:
    text = " ".join(DOC.split())
    assert f"ConvNet width {ProxyConfig.width} for {ProxyConfig.epochs} epochs" in text
    assert f"{EvalConfig.seeds} seeds x {EvalConfig.epochs} epochs each at width {ProxyConfig.width}" in text
    assert f"DM at IPC {DistillConfig.ipc} for {DistillConfig.iterations} iterations" in text and DistillConfig.method == "dm"
    assert f"{DistillEvalConfig.seeds} seeds x {DistillEvalConfig.epochs} epochs at width {DistillEvalConfig.width}" in text
    assert f"{round(100 * TEST_FRACTION)}% of each class is held out" in text


def test_the_job_guide_is_linked_from_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "docs/jobs.md" in readme and "docs/methods.md" in readme
