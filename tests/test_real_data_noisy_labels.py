"""On real Fashion-MNIST with 10% of labels flipped, EL2N, forgetting and AUM find the flipped ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from engine.data import load_dataset, subsample_per_class
from engine.pipeline.prune_config import ProxyConfig
from engine.pipeline.scoring import compute_scores
from engine.scores import get_score
from tests.conftest import make_dataset


@pytest.mark.slow
def test_el2n_forgetting_aum_find_flipped_fashion_mnist_labels(shared_datasets: Path) -> None:
    full = load_dataset(shared_datasets / "fashion-mnist")
    keep = subsample_per_class(full.y_train, 200)
    x, y = full.x_train[keep], full.y_train[keep].copy()
    rng = np.random.default_rng(0)
    flipped = rng.random(len(y)) < 0.1
    y[flipped] = (y[flipped] + rng.integers(1, 10, flipped.sum())) % 10
    data = make_dataset(x, y, full.x_test[:500], full.y_test[:500], "fashion-noisy")

    # One proxy run records all three scores.
    scores = compute_scores(data, ["el2n", "forgetting", "aum"], ProxyConfig(width=32, epochs=6), params={"el2n": {"epoch": 3}}).scores
    for name, values in scores.items():
        importance = values if get_score(name).higher_is_important else -values
        auroc = roc_auc_score(flipped, importance)
        assert auroc >= 0.85, f"{name}: AUROC {auroc:.3f}"
