"""Evaluation: train fresh models on a subset, report accuracy mean ± std beside baselines."""

from engine.evaluate.accuracy import (
    AccuracyStats,
    evaluate_tensors,
    evaluate_training_set,
    mean_per_class,
    random_subset_like,
    test_accuracy,
    train_and_test,
)
from engine.evaluate.gain import dd_ranking, gain_over_random
from engine.evaluate.spec import EvalSpec

__all__ = [
    "AccuracyStats",
    "EvalSpec",
    "dd_ranking",
    "evaluate_tensors",
    "evaluate_training_set",
    "gain_over_random",
    "mean_per_class",
    "random_subset_like",
    "test_accuracy",
    "train_and_test",
]
