"""Selection policies: turn one score per sample into the indices of the kept subset.

Every policy works on *importance* (the score oriented so that larger = harder / more
informative), so "hardest" means the top of the ranking whatever the score's own sign.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from engine.registry import load
from engine.select.allocation import class_budgets
from engine.select.budget import SelectionError, resolve_count
from engine.select.config import SelectionConfig
from engine.select.registry import POLICIES


def importance_of(scores: np.ndarray, higher_is_important: bool) -> np.ndarray:
    return np.asarray(scores, dtype=np.float64) if higher_is_important else -np.asarray(scores, dtype=np.float64)


def rank_by_importance(importance: np.ndarray) -> np.ndarray:
    """Indices, most important first; ties keep the original order so the ranking is deterministic."""
    return np.argsort(-importance, kind="stable").astype(np.int64)


def _window_block(importance: np.ndarray, k: int, window: tuple[float, float]) -> np.ndarray:
    lo, hi = window
    ascending = np.argsort(importance, kind="stable")
    n = len(ascending)
    end = math.ceil(hi * n - 1e-9)  # 0.55 * 100 is 55.000000000000007 in floating point, not 56
    start = end - k
    if start < math.floor(lo * n) - 1e-9 or start < 0:
        raise SelectionError(
            f"window {lo:.2f}:{hi:.2f} holds {end - math.floor(lo * n)} samples but {k} are to be kept; "
            "widen the window or lower keep"
        )
    return ascending[start:end]


def ccs_drop_count(n: int, k: int, cutoff: float) -> int:
    """How many of the hardest of ``n`` samples CCS drops before keeping ``k``: the ``cutoff`` share, or fewer
    where the budget needs more than the cutoff leaves."""
    return min(int(cutoff * n), n - k)


def ccs_dropped(
    labels: np.ndarray, num_classes: int, config: SelectionConfig, per_class: Sequence[SelectionConfig] | None = None
) -> int | None:
    """How many samples a selection's CCS dropped as the hardest (what the report states beside the configured
    cutoff, which a small class's budget may not allow); None where no CCS ran."""
    k = resolve_count(config.keep, len(labels))
    if not config.class_balanced:
        return ccs_drop_count(len(labels), k, config.ccs_hard_cutoff) if config.mode == "ccs" else None
    dropped = [
        ccs_drop_count(int((labels == c).sum()), int(budget), policy.ccs_hard_cutoff)
        for c, budget in enumerate(class_budgets(labels, num_classes, k, config.allocation))
        if (policy := config if per_class is None else per_class[c]).mode == "ccs" and budget > 0
    ]
    return sum(dropped) if dropped else None


def _ccs(importance: np.ndarray, k: int, cutoff: float, strata: int, rng: np.random.Generator) -> np.ndarray:
    """Coverage-centric stratified sampling (Zheng et al., ICLR 2023).

    Drop the hardest ``cutoff`` fraction (likely label noise), split the rest into equal-width
    score strata, then give every stratum an equal share of the budget, smallest strata first,
    handing what a small stratum cannot use on to the larger ones; sample uniformly inside. Where the
    budget is more than the cutoff leaves (a small class that keeps most of itself under an allocation
    that protects small classes), only as many of the hardest are dropped as the budget allows.
    """
    order = np.argsort(-importance, kind="stable")
    kept = order[ccs_drop_count(len(order), k, cutoff) :]
    vals = importance[kept]
    edges = np.linspace(vals.min(), vals.max(), strata + 1)
    bins = np.clip(np.searchsorted(edges, vals, side="right") - 1, 0, strata - 1)
    groups = [kept[bins == b] for b in range(strata)]
    groups = sorted((g for g in groups if len(g)), key=len)
    chosen: list[np.ndarray] = []
    budget = k
    for i, group in enumerate(groups):
        share = budget // (len(groups) - i)
        take = min(len(group), share)
        chosen.append(rng.choice(group, size=take, replace=False))
        budget -= take
    return np.concatenate(chosen) if chosen else np.empty(0, dtype=np.int64)


def keep_hardest(importance: np.ndarray, features: np.ndarray | None, k: int, config: SelectionConfig,
                 rng: np.random.Generator, seed: int) -> np.ndarray:
    return rank_by_importance(importance)[:k]


def keep_easiest(importance: np.ndarray, features: np.ndarray | None, k: int, config: SelectionConfig,
                 rng: np.random.Generator, seed: int) -> np.ndarray:
    return rank_by_importance(importance)[::-1][:k]


def keep_window(importance: np.ndarray, features: np.ndarray | None, k: int, config: SelectionConfig,
                rng: np.random.Generator, seed: int) -> np.ndarray:
    if config.window is None:
        raise SelectionError("mode 'window' needs window=(lo, hi) percentiles, e.g. (0.7, 0.8)")
    return _window_block(importance, k, config.window)


def keep_ccs(importance: np.ndarray, features: np.ndarray | None, k: int, config: SelectionConfig,
             rng: np.random.Generator, seed: int) -> np.ndarray:
    return _ccs(importance, k, config.ccs_hard_cutoff, config.ccs_strata, rng)


def _pick(
    importance: np.ndarray,
    features: np.ndarray | None,
    k: int,
    config: SelectionConfig,
    rng: np.random.Generator,
    seed: int,
) -> np.ndarray:
    if k == 0:
        return np.empty(0, dtype=np.int64)
    if config.mode == "auto":
        raise SelectionError("mode 'auto' is resolved to a policy first (engine.select.auto.resolve_auto)")
    try:
        policy = POLICIES.get(config.mode)
    except ValueError as exc:  # the registry's message, as the error the selection's callers catch
        raise SelectionError(str(exc)) from None
    if policy.needs_features and features is None:
        raise SelectionError(f"mode {policy.name!r} needs the proxy model's features of every sample")
    picked: np.ndarray = load(policy.pick)(importance, features, k, config, rng, seed)
    return picked


def select_indices(
    importance: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    config: SelectionConfig,
    seed: int = 0,
    features: np.ndarray | None = None,
    per_class: Sequence[SelectionConfig] | None = None,
) -> np.ndarray:
    """Indices of the kept samples, ordered most important first.

    Args:
        importance: oriented scores (larger = more important).
        labels: (N,) class labels.
        num_classes: number of classes.
        config: keep, mode and class balance (resolved: not ``auto``, not unset), window, CCS parameters.
        seed: for the random draws of CCS and the k-means of prototypes.
        features: (N, D) proxy features, for mode ``prototypes``.
        per_class: a policy per class in place of ``config``'s (class-balanced selection only; ``config`` still
            sets the budget and its allocation across classes).
    """
    if config.class_balanced is None:
        raise ValueError("class_balanced is unset: resolve the selection with resolve_auto first")
    rng = np.random.default_rng(seed)
    k = resolve_count(config.keep, len(importance))
    if config.class_balanced:
        parts = []
        for c, budget in enumerate(class_budgets(labels, num_classes, k, config.allocation)):
            members = np.flatnonzero(labels == c)
            member_features = None if features is None else features[members]
            policy = config if per_class is None else per_class[c]
            parts.append(members[_pick(importance[members], member_features, int(budget), policy, rng, seed)])
        picked = np.concatenate(parts)
    else:
        picked = _pick(importance, features, k, config, rng, seed)
    return picked[np.argsort(-importance[picked], kind="stable")].astype(np.int64)


def coreset_weights(importance: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Importance-aware training weights for the kept samples (TDDS, Eq. 13).

    Scores are shifted to be non-negative and scaled to mean 1 over the subset, so the subset
    keeps the relative dominance its samples had in the full data without changing the loss scale.
    """
    shifted = importance - importance.min()
    chosen = shifted[indices]
    if chosen.mean() <= 0:
        return np.ones(len(indices), dtype=np.float32)
    return (chosen / chosen.mean()).astype(np.float32)
