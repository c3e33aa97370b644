"""Fixtures shared by the engine tests: real data found through a path setting, never downloaded."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from engine.data.dataset import ImageDataset, SplitInfo


def shared_datasets_dir() -> Path | None:
    """``$CONDENSE_SHARED_DATASETS``, else the nearest ``shared/datasets`` beside a parent of this file."""
    env = os.environ.get("CONDENSE_SHARED_DATASETS")
    if env:
        return Path(env) if Path(env).is_dir() else None
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "datasets"
        if candidate.is_dir():
            return candidate
    return None


@pytest.fixture(scope="module")
def service_overrides() -> dict[str, str]:
    """Extra ``CONDENSE_*`` variables of the module's ``live_service`` (tests/service_fixtures.py); a
    module that needs other settings (a short time limit, private servers) defines its own."""
    return {}


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    found = shared_datasets_dir()
    if found is None:
        pytest.skip("real datasets not found: set CONDENSE_SHARED_DATASETS or place shared/datasets beside the repo")
    return found


def make_dataset(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, name: str = "synthetic") -> ImageDataset:
    """An ImageDataset straight from arrays (N, C, H, W) in [0, 1], with statistics from the training part."""
    x = x.astype(np.float32)
    channels = x.shape[1]
    mean = tuple(float(x[:, c].mean()) for c in range(channels))
    std = tuple(max(float(x[:, c].std()), 1e-6) for c in range(channels))
    classes = [str(c) for c in range(int(max(y.max(), y_test.max())) + 1)]
    return ImageDataset(
        x, y.astype(np.int64), x_test.astype(np.float32), y_test.astype(np.int64), classes, name, "npz",
        f"test-{name}", SplitInfo("provided"), mean, std,
    )


@pytest.fixture(scope="session")
def digits() -> ImageDataset:
    """scikit-learn's 8x8 digits (ships in the wheel): 1400 train / 397 test."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    return make_dataset(x[:1400], y[:1400], x[1400:], y[1400:], "digits")


@pytest.fixture
def trainings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The stage of every proxy training the scoring step starts (to tell a trained run from a reused one)."""
    import engine.pipeline.scoring as scoring

    started: list[str] = []
    real = scoring.train_model

    def counting(*args, **kwargs):
        started.append(kwargs.get("stage", "?"))
        return real(*args, **kwargs)

    monkeypatch.setattr(scoring, "train_model", counting)
    return started
