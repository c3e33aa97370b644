"""An evaluation scores the set, not the order its indices arrive in (issue 34.3): two scores that keep the
same samples in another order get the same accuracies, seed by seed."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from engine.data.dataset import ImageDataset
from engine.evaluate import EvalSpec, evaluate_tensors, evaluate_training_set

SPEC = EvalSpec(model="convnet", width=8, epochs=2, batch_size=64, seeds=2, device="cpu")


def subset_and_shuffle(digits: ImageDataset) -> tuple[np.ndarray, np.ndarray]:
    """A subset in ascending order and the same subset shuffled (as another score would rank it)."""
    idx = np.arange(0, len(digits.y_train), 4)
    return idx, np.random.default_rng(3).permutation(idx)


def test_the_order_alone_changes_what_a_model_learns(digits: ImageDataset) -> None:
    """Why the evaluation fixes the order: trained on the same samples listed in two orders, as
    evaluate_training_set did before, the models differ (the batches are a permutation of positions)."""
    idx, shuffled = subset_and_shuffle(digits)
    x, y = digits.train_tensors()
    in_order = evaluate_tensors(digits, x[torch.from_numpy(idx)], y[torch.from_numpy(idx)], SPEC)
    other_order = evaluate_tensors(digits, x[torch.from_numpy(shuffled)], y[torch.from_numpy(shuffled)], SPEC)
    assert in_order.per_seed != other_order.per_seed


@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_a_permutation_of_the_indices_gives_the_same_accuracies(digits: ImageDataset, batched: bool, weighted: bool) -> None:
    idx, shuffled = subset_and_shuffle(digits)
    # A weight per sample index, so that each shuffled index keeps its own weight.
    weight_of = np.linspace(0.2, 3.0, len(digits.y_train))
    spec = replace(SPEC, batched=batched)
    in_order = evaluate_training_set(digits, idx, spec, sample_weights=weight_of[idx] if weighted else None)
    other_order = evaluate_training_set(digits, shuffled, spec, sample_weights=weight_of[shuffled] if weighted else None)
    assert other_order.per_seed == in_order.per_seed  # bit for bit, seed by seed
    assert other_order.per_class == in_order.per_class


def test_weights_follow_their_indices(digits: ImageDataset) -> None:
    """The same indices with their weights swapped between samples train another model: the sort moves each
    weight with its index instead of leaving it at its position."""
    idx, _ = subset_and_shuffle(digits)
    weights = np.linspace(0.1, 5.0, len(idx))
    kept = evaluate_training_set(digits, idx, SPEC, sample_weights=weights)
    assert evaluate_training_set(digits, idx[::-1], SPEC, sample_weights=weights[::-1]).per_seed == kept.per_seed
    assert evaluate_training_set(digits, idx, SPEC, sample_weights=weights[::-1]).per_seed != kept.per_seed


def test_weights_that_do_not_match_the_indices_are_refused(digits: ImageDataset) -> None:
    with pytest.raises(ValueError, match="sample_weights has 3 entries for 4 indices"):
        evaluate_training_set(digits, np.arange(4), SPEC, sample_weights=np.ones(3))
