"""Holding out a stratified, reproducible test split when a source provides none."""

from __future__ import annotations

import numpy as np

from engine.data.errors import DatasetError

TEST_FRACTION = 0.2  # held out of each class when a source has no test split, unless the caller says otherwise


def stratified_holdout(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split sample indices into (train, test) with ``fraction`` of every class in test.

    Each class with n >= 2 samples gives ``round(n * fraction)`` of them to test, clipped to
    [1, n - 1] so every class is present in both splits; a single-sample class stays in train.
    Only numpy's seeded generator is used, so the same labels, fraction and seed always give the
    same split. Both index arrays are sorted, keeping the source order.

    Args:
        y: (N,) int labels.
        fraction: share of each class to hold out, in (0, 1).
        seed: seed of the shuffle within each class.
    """
    if not 0.0 < fraction < 1.0:
        raise DatasetError(f"test_fraction must be between 0 and 1, got {fraction}", field="test_fraction",
                           hint="use a value such as 0.2")
    rng = np.random.default_rng(seed)
    # One stable sort groups every class's indices, instead of one pass over y per class.
    order = np.argsort(y, kind="stable")
    _, starts, counts = np.unique(y[order], return_index=True, return_counts=True)
    test: list[np.ndarray] = []
    for start, count in zip(starts, counts):
        if count < 2:
            continue
        n_test = min(max(round(count * fraction), 1), count - 1)
        test.append(rng.permutation(order[start:start + count])[:n_test])
    test_idx = np.sort(np.concatenate(test)) if test else np.empty(0, np.int64)
    train_mask = np.ones(len(y), bool)
    train_mask[test_idx] = False
    return np.flatnonzero(train_mask), test_idx.astype(np.int64)
