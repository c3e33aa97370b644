"""Selection policies (keep hardest / easiest / percentile window / CCS; class-balanced or global)."""

from engine.select.allocation import class_budgets
from engine.select.policies import (
    SelectionError,
    coreset_weights,
    importance_of,
    rank_by_importance,
    resolve_count,
    select_indices,
)
from engine.select.stats import class_distribution_kl, per_class_counts

__all__ = [
    "SelectionError",
    "class_budgets",
    "class_distribution_kl",
    "coreset_weights",
    "importance_of",
    "per_class_counts",
    "rank_by_importance",
    "resolve_count",
    "select_indices",
]
