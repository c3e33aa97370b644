"""A test split without a class: that class's accuracy is undefined, reported as null (not NaN, which is
not JSON and which PostgreSQL refuses in a JSON column) and named, whichever way it was measured."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from engine.data.dataset import ImageDataset
from engine.evaluate import EvalSpec, evaluate_training_set
from engine.pipeline.distill import random_real_baseline
from engine.pipeline.prune import run_prune
from engine.pipeline.prune_config import EvalConfig, ProxyConfig, PruneConfig
from engine.select.config import SelectionConfig

ABSENT = 3
SPEC = EvalSpec(model="convnet", width=8, epochs=1, batch_size=64, seeds=2, device="cpu")


@pytest.fixture(scope="module")
def no_test_threes(digits: ImageDataset) -> ImageDataset:
    keep = digits.y_test != ABSENT
    return replace(digits, x_test=digits.x_test[keep], y_test=digits.y_test[keep])


def assert_null_and_named(stats: dict) -> None:
    assert stats["per_class"][ABSENT] is None
    assert stats["classes_without_test_samples"] == [ABSENT]
    assert all(0.0 <= acc <= 1.0 for c, acc in enumerate(stats["per_class"]) if c != ABSENT)
    json.dumps(stats, allow_nan=False)


@pytest.mark.parametrize("batched", [False, True])
def test_seeds_trained_alone_or_together(no_test_threes: ImageDataset, batched: bool) -> None:
    stats = evaluate_training_set(no_test_threes, None, replace(SPEC, batched=batched)).to_dict()
    assert_null_and_named(stats)


def test_random_real_images_of_a_distillation(no_test_threes: ImageDataset) -> None:
    assert_null_and_named(random_real_baseline(no_test_threes, ipc=2, seed=0, spec=SPEC).to_dict())


def test_a_prune_report_is_valid_json(no_test_threes: ImageDataset, digits: ImageDataset) -> None:
    config = PruneConfig(
        method="el2n",
        selection=SelectionConfig(keep=0.2),
        proxy=ProxyConfig(width=8, epochs=1),
        evaluation=EvalConfig(seeds=2, epochs=1, width=8),
    )
    report = run_prune(no_test_threes, config).report
    for name in ("subset", "random", "full"):
        assert_null_and_named(report["evaluation"][name])
    json.dumps(report, allow_nan=False)
    # With every class in the test split, none is named.
    complete = evaluate_training_set(digits, None, replace(SPEC, seeds=1)).to_dict()
    assert complete["classes_without_test_samples"] == [] and None not in complete["per_class"]
