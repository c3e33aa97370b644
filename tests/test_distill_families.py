"""Distillation families are a registry (engine.distill.families): the pipeline builds each method's matcher
through it, so a new family is its module plus a registration, and a method naming it runs end to end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.data.dataset import ImageDataset
from engine.distill.distribution_config import DMConfig
from engine.distill.families import FAMILIES, DistillFamily
from engine.distill.registry import METHODS, MethodSpec, register_method
from engine.pipeline.distill import run_distill
from engine.pipeline.distill_config import DistillConfig, InitConfig


@pytest.fixture
def toy_method() -> Iterator[str]:
    FAMILIES.register(DistillFamily("mean_pixels", "match each class's mean pixels", "dm", "tests.toy_family:build"))
    register_method(MethodSpec("toy", "Mean-pixel matching", "a test", "mean_pixels", dsa=False))
    yield "toy"
    METHODS.unregister("toy")
    FAMILIES.unregister("mean_pixels")


def test_a_registered_family_runs_through_the_pipeline(digits: ImageDataset, toy_method: str) -> None:
    config = DistillConfig(method=toy_method, ipc=2, iterations=5, width=16, device="cpu", evaluation=None,
                           init=InitConfig(mode="real"), dm=DMConfig(batch_real=32, lr_images=1.0))
    result = run_distill(digits, config)
    assert result.report["method"]["family"] == "mean_pixels"
    losses = result.loss_curve
    assert len(losses) == 5 and losses[-1] < losses[0]  # matching each class's mean pixels moves towards it


def test_a_method_of_an_unknown_family_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown distillation family 'nope'; choose one of gradient"):
        register_method(MethodSpec("bad", "Bad", "a test", "nope"))
    assert "bad" not in METHODS


@pytest.mark.parametrize("family", FAMILIES.names())
def test_every_family_builds_from_its_registry_entry(family: str) -> None:
    from engine.registry import load

    entry = FAMILIES.get(family)
    assert callable(load(entry.build)) and entry.config_field in {f for f in DistillConfig.__dataclass_fields__}
