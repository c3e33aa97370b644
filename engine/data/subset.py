"""Choosing a fixed number of samples per class, for tests, benchmarks and baselines."""

from __future__ import annotations

import numpy as np


def subsample_per_class(y: np.ndarray, per_class: int, *, seed: int | None = None) -> np.ndarray:
    """Indices of at most ``per_class`` samples of every class, sorted ascending.

    Args:
        y: (N,) int labels.
        per_class: samples to keep per class; smaller classes are kept whole.
        seed: None keeps each class's first samples in source order (deterministic and
            cheap); an int picks a seeded random subset of each class instead.
    """
    y = np.asarray(y)
    order = np.argsort(y, kind="stable")
    _, starts, counts = np.unique(y[order], return_index=True, return_counts=True)
    rng = np.random.default_rng(seed) if seed is not None else None
    picked = []
    for start, count in zip(starts, counts):
        members = order[start:start + count]
        picked.append(rng.permutation(members)[:per_class] if rng is not None else members[:per_class])
    return np.sort(np.concatenate(picked)) if picked else np.empty(0, np.int64)
