"""Where a synthetic set starts: random real images per class, noise, the coreset, or a pruned subset.

Which start a job names, and what ``auto`` resolves to, is ``engine.distill.start``.

"Pruned" is Prune-then-distill (Sundar et al., ICASSP 2023): any pruning score and selection
policy of the pruning engine picks exactly ``ipc`` samples inside every class (the paper: EL2N,
class-balanced, optionally the 70-80th percentile window), and distillation starts from them.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from engine.select import SelectionError, select_indices
from engine.select.config import SelectionConfig

def _members(y: np.ndarray, c: int, ipc: int, allowed: np.ndarray | None) -> np.ndarray:
    members = np.flatnonzero(y == c)
    if allowed is not None:
        preferred = members[allowed[members]]
        # DATM keeps correctly classified starts; a class with too few falls back to all its samples.
        members = preferred if len(preferred) >= ipc else members
    if len(members) < ipc:
        raise ValueError(f"class {c} has {len(members)} training samples, fewer than ipc={ipc}")
    return members


def pick_real(y: np.ndarray, num_classes: int, ipc: int, seed: int, allowed: np.ndarray | None = None) -> np.ndarray:
    """ipc random sample indices per class, class-major."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.choice(_members(y, c, ipc, allowed), size=ipc, replace=False) for c in range(num_classes)])


def fit_per_class(indices: np.ndarray, y: np.ndarray, num_classes: int, ipc: int, seed: int) -> np.ndarray:
    """Exactly ``ipc`` of ``indices`` per class, class-major, for a synthetic set that holds ``ipc`` per class.

    The coreset keeps each class's share of the data, which on balanced data is ``ipc`` per class; on
    imbalanced data a class keeps its first ``ipc`` coreset samples, or is topped up with random others.
    """
    rng = np.random.default_rng(seed)
    parts = []
    for c in range(num_classes):
        chosen = indices[y[indices] == c][:ipc]
        if len(chosen) < ipc:
            others = np.setdiff1d(_members(y, c, ipc, None), chosen)
            chosen = np.concatenate([chosen, rng.choice(others, size=ipc - len(chosen), replace=False)])
        parts.append(chosen)
    return np.concatenate(parts)


def pick_pruned(
    importance: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    ipc: int,
    selection: SelectionConfig,
    seed: int,
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """ipc indices per class chosen by a pruning policy on oriented scores (larger = more important), class-major.

    A percentile window too narrow for ``ipc`` samples of a class extends below its lower end (and, for a
    class of barely ``ipc`` samples, above its upper end), as ``PrunedStartConfig`` documents.
    """
    per_class = replace(selection, keep=ipc, class_balanced=False)

    def pick(members: np.ndarray) -> np.ndarray:
        config = per_class
        if config.mode == "window" and config.window is not None:
            config = replace(config, window=_fit_window(config.window, ipc, len(members)))
        return members[select_indices(importance[members], np.zeros(len(members), np.int64), 1, config, seed)]

    parts = []
    for c in range(num_classes):
        members = _members(y, c, ipc, allowed)
        try:
            parts.append(pick(members))
        except SelectionError:
            if allowed is None:
                raise
            # A narrow window over only the correctly classified samples can hold fewer than ipc;
            # the policy then applies to the whole class, as it would without DATM's preference.
            parts.append(pick(_members(y, c, ipc, None)))
    return np.concatenate(parts)


def _fit_window(window: tuple[float, float], k: int, n: int) -> tuple[float, float]:
    lo, hi = window
    hi = max(hi, k / n)
    return max(0.0, min(lo, hi - k / n)), hi


def noise_images(num_classes: int, ipc: int, shape: tuple[int, int, int], generator: torch.Generator) -> torch.Tensor:
    """Standard-normal images: the data are normalised, so this is noise at the data's own scale."""
    return torch.randn((num_classes * ipc, *shape), generator=generator)
