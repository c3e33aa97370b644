"""Evaluation: train fresh models on a subset, report accuracy mean ± std beside baselines."""

import lazy_loader

# Attributes load with their submodule on first use (lazy_loader): importing one light submodule, such as a
# config or a registry, does not import torch through this package.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "accuracy": [
            "AccuracyStats",
            "evaluate_tensors",
            "evaluate_training_set",
            "mean_per_class",
            "random_subset_like",
            "test_accuracy",
            "train_and_test",
        ],
        "gain": ["dd_ranking", "gain_over_random"],
        "spec": ["EvalSpec"],
    },
)
