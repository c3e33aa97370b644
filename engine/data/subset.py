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


def long_tailed_indices(y: np.ndarray, ratio: float, seed: int, largest: int | None = None) -> np.ndarray:
    """Indices of a long-tailed subset, sorted ascending: class ``c`` of ``C`` keeps
    ``largest * ratio ** (-c / (C - 1))`` samples (the exponential profile of the long-tailed CIFAR benchmarks,
    Cui et al., CVPR 2019), so class 0 keeps ``largest`` and the last ``largest / ratio``.

    Args:
        y: (N,) int labels; classes are ranked by their index.
        ratio: imbalance ratio, largest class over smallest (>= 1).
        seed: which samples of each class are kept.
        largest: the largest class's count; None: the smallest class size, so every class can supply its count.
    """
    if ratio < 1:
        raise ValueError(f"imbalance ratio {ratio} must be at least 1")
    y = np.asarray(y)
    classes = np.unique(y)
    sizes = np.array([(y == c).sum() for c in classes])
    top = int(sizes.min()) if largest is None else largest
    steps = max(1, len(classes) - 1)
    targets = [max(1, int(top * ratio ** (-i / steps) + 1e-9)) for i in range(len(classes))]
    rng = np.random.default_rng(seed)
    picked = []
    for c, target, size in zip(classes, targets, sizes, strict=True):
        if target > size:
            raise ValueError(f"class {c} has {size} samples, fewer than the {target} its profile keeps")
        picked.append(rng.choice(np.flatnonzero(y == c), size=target, replace=False))
    return np.sort(np.concatenate(picked))
