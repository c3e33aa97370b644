"""Evaluation: train fresh models on a subset, report accuracy mean ± std beside baselines."""

from engine.evaluate.accuracy import (
    AccuracyStats,
    EvalSpec,
    evaluate_tensors,
    evaluate_training_set,
    random_subset_like,
    test_accuracy,
    train_and_test,
)

__all__ = [
    "AccuracyStats",
    "EvalSpec",
    "evaluate_tensors",
    "evaluate_training_set",
    "random_subset_like",
    "test_accuracy",
    "train_and_test",
]
