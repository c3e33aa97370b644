"""Selection policies (keep hardest / easiest / percentile window / CCS; class-balanced or global)."""

import lazy_loader

# Attributes load with their submodule on first use (lazy_loader): importing one light submodule, such as a
# config or a registry, does not import torch through this package.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "allocation": ["class_budgets"],
        "budget": ["SelectionError", "resolve_count"],
        "policies": ["coreset_weights", "importance_of", "rank_by_importance", "select_indices"],
        "stats": ["class_distribution_kl", "per_class_counts"],
    },
)
