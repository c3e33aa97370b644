"""Scores on small real data with known structure: duplicated easy samples, flipped labels."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from engine.data.dataset import ImageDataset
from engine.pipeline.prune_config import ProxyConfig
from engine.pipeline.scoring import compute_scores
from engine.scores import get_score, score_random
from tests.conftest import make_dataset

PROXY = ProxyConfig(width=32, epochs=12)


def importance(name: str, scores: np.ndarray) -> np.ndarray:
    return scores if get_score(name).higher_is_important else -scores


def with_duplicated_prototypes(digits: ImageDataset, copies: int = 30) -> tuple[ImageDataset, np.ndarray]:
    """Digits plus ``copies`` copies of each class's most typical image (nearest the class mean)."""
    x, y = digits.x_train, digits.y_train
    extra_x, extra_y = [], []
    for c in range(digits.num_classes):
        members = x[y == c]
        typical = members[np.argmin(((members - members.mean(0)) ** 2).sum((1, 2, 3)))]
        extra_x += [typical] * copies
        extra_y += [c] * copies
    is_dup = np.r_[np.zeros(len(y)), np.ones(len(extra_y))].astype(bool)
    data = make_dataset(np.concatenate([x, np.stack(extra_x)]), np.r_[y, extra_y], digits.x_test, digits.y_test, "dup")
    return data, is_dup


def with_flipped_labels(digits: ImageDataset, fraction: float = 0.1, seed: int = 0) -> tuple[ImageDataset, np.ndarray]:
    rng = np.random.default_rng(seed)
    flipped = rng.random(len(digits.y_train)) < fraction
    y = digits.y_train.copy()
    y[flipped] = (y[flipped] + rng.integers(1, digits.num_classes, flipped.sum())) % digits.num_classes
    return make_dataset(digits.x_train, y, digits.x_test, digits.y_test, "noisy"), flipped


@pytest.fixture(scope="module")
def duplicate_scores(digits: ImageDataset) -> tuple[dict[str, np.ndarray], np.ndarray]:
    data, is_dup = with_duplicated_prototypes(digits)
    params = {
        # Variance scores measure change: look after the first epochs, in which every sample moves.
        "tdds": {"window": 4, "start_epoch": 4},
        "dyn_unc": {"window": 3},
        "eva": {"early_start": 3},
        "el2n": {"epoch": 3},
        "grand": {"epoch": 3},
    }
    methods = ["el2n", "grand", "forgetting", "aum", "entropy", "dyn_unc", "tdds", "eva"]
    return compute_scores(data, methods, PROXY, params=params).scores, is_dup


@pytest.mark.parametrize(
    ("name", "max_auroc"),
    [("el2n", 0.3), ("grand", 0.3), ("aum", 0.3), ("entropy", 0.3), ("tdds", 0.3), ("eva", 0.3), ("dyn_unc", 0.4)],
)
def test_duplicated_easy_samples_rank_as_least_important(duplicate_scores, name: str, max_auroc: float) -> None:
    scores, is_dup = duplicate_scores
    # AUROC of "importance ranks a duplicate above an original": well below 0.5 means duplicates sit at the bottom.
    assert roc_auc_score(is_dup, importance(name, scores[name])) <= max_auroc


def test_duplicated_easy_samples_are_never_forgotten(duplicate_scores) -> None:
    scores, is_dup = duplicate_scores
    events = scores["forgetting"]
    assert (events[is_dup] == 0).mean() >= 0.99
    assert events[is_dup].mean() < events[~is_dup].mean()


@pytest.mark.parametrize("name", ["el2n", "forgetting", "aum"])
def test_flipped_labels_rank_as_hardest(digits: ImageDataset, name: str) -> None:
    data, flipped = with_flipped_labels(digits)
    scores = compute_scores(data, [name], PROXY, params={"el2n": {"epoch": 3}}).scores[name]
    assert roc_auc_score(flipped, importance(name, scores)) >= 0.9


def test_el2n_averages_over_seeds(digits: ImageDataset) -> None:
    proxy = ProxyConfig(width=16, epochs=4)
    one = compute_scores(digits, ["el2n"], proxy, params={"el2n": {"epoch": 2, "seeds": 1}}, seed=0).scores["el2n"]
    other = compute_scores(digits, ["el2n"], proxy, params={"el2n": {"epoch": 2, "seeds": 1}}, seed=1).scores["el2n"]
    both = compute_scores(digits, ["el2n"], proxy, params={"el2n": {"epoch": 2, "seeds": 2}}, seed=0).scores["el2n"]
    np.testing.assert_allclose(both, (one + other) / 2, rtol=1e-4, atol=1e-6)


def test_random_scores_are_uniform_and_reproducible() -> None:
    a, b = score_random(5000, 7), score_random(5000, 7)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, score_random(5000, 8))
    assert 0.45 < a.mean() < 0.55 and a.min() >= 0 and a.max() < 1
