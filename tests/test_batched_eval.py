"""Seeds trained together (vmap over stacked parameters) are the models sequential training gives."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from engine.data.dataset import ImageDataset
from engine.evaluate import EvalSpec, evaluate_training_set

SPEC = EvalSpec(model="convnet", width=8, epochs=3, batch_size=64, seeds=3, device="cpu")


@pytest.mark.parametrize("weighted", [False, True])
def test_batched_seeds_match_sequential_ones(digits: ImageDataset, weighted: bool) -> None:
    idx = np.arange(0, len(digits.y_train), 3)
    weights = np.linspace(0.5, 1.5, len(idx)) if weighted else None
    alone = evaluate_training_set(digits, idx, SPEC, base_seed=7, sample_weights=weights)
    together = evaluate_training_set(digits, idx, replace(SPEC, batched=True), base_seed=7, sample_weights=weights)
    # Same initial weights, batch orders and steps: the same predictions up to float summation order.
    np.testing.assert_allclose(together.per_seed, alone.per_seed, atol=2 / len(digits.y_test))
    assert together.per_seed != [together.per_seed[0]] * 3  # three different models, not one copied


def test_what_cannot_be_batched_falls_back_to_one_by_one(digits: ImageDataset) -> None:
    idx = np.arange(0, len(digits.y_train), 3)
    augmented = replace(SPEC, augment=True, seeds=2)
    assert evaluate_training_set(digits, idx, replace(augmented, batched=True)).per_seed == evaluate_training_set(
        digits, idx, augmented).per_seed
    batchnorm = replace(SPEC, model="resnet18", width=None, epochs=1, seeds=2)
    assert evaluate_training_set(digits, idx[:60], replace(batchnorm, batched=True)).per_seed == evaluate_training_set(
        digits, idx[:60], batchnorm).per_seed
