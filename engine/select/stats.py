"""Statistics of a selection: per-class counts and the class-distribution shift it causes."""

from __future__ import annotations

import numpy as np


def class_distribution_kl(labels: np.ndarray, indices: np.ndarray, num_classes: int, eps: float = 1e-12) -> float:
    """KL(p_full || p_subset) of the class distributions, as in the Prune-then-distill paper's Table 4.

    0 means the subset keeps the class balance exactly; a class missing from the subset makes it large.
    """
    full = np.bincount(labels, minlength=num_classes).astype(np.float64)
    sub = np.bincount(labels[indices], minlength=num_classes).astype(np.float64)
    p = full / full.sum()
    q = (sub + eps) / (sub + eps).sum()
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


def per_class_counts(labels: np.ndarray, indices: np.ndarray, num_classes: int) -> list[int]:
    return np.bincount(labels[indices], minlength=num_classes).tolist()
