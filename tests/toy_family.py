"""A toy distillation family for the tests: match each class's mean pixels. This module (its settings, its
matcher, its registration) is all a new family needs; ``tests/toy_plugin.py`` registers it the way a user's
plugin would (``CONDENSE_PLUGINS``), and the in-process tests call ``register``/``unregister`` themselves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.config_fields import setting
from engine.distill.families import FAMILIES, DistillFamily, OptionGroup
from engine.distill.registry import METHODS, MethodSpec, register_method

if TYPE_CHECKING:
    import torch

    from engine.distill.base import ModelFactory, RealData, UpdateFn
    from engine.distill.families import MatchSettings
    from engine.distill.synthetic import SyntheticSet

FAMILY, METHOD, GROUP = "mean_pixels", "toy", "mean_pixels"


@dataclass
class MeanPixelConfig:
    batch_real: int = setting(64, "real images per class whose mean each step matches", ge=1, le=4096)
    lr_images: float = 1.0
    momentum: float = 0.5


class MeanPixelMatcher:
    def __init__(self, real: RealData, config: MeanPixelConfig) -> None:
        self.real, self.config = real, config

    def param_groups(self, synthetic: SyntheticSet) -> list[dict]:
        return [{"params": [synthetic.images], "lr": self.config.lr_images, "momentum": self.config.momentum}]

    def iterate(self, synthetic: SyntheticSet, update: UpdateFn, generator: torch.Generator, iteration: int) -> float:
        import torch

        loss = torch.zeros((), device=synthetic.images.device)
        for c in range(synthetic.num_classes):
            real = self.real.sample(c, self.config.batch_real, generator)
            loss = loss + (real.mean(0) - synthetic.images[synthetic.class_slice(c)].mean(0)).pow(2).sum()
        update(loss)
        return float(loss.detach())


def build(config: MeanPixelConfig, settings: MatchSettings, real: RealData, new_model: ModelFactory,
          experts: object) -> MeanPixelMatcher:
    return MeanPixelMatcher(real, config)


def register() -> None:
    FAMILIES.register(DistillFamily(FAMILY, "match each class's mean pixels (a test's toy)",
                                    (OptionGroup(GROUP, "tests.toy_family:MeanPixelConfig"),), "tests.toy_family:build"))
    register_method(MethodSpec(METHOD, "Mean-pixel matching", "a test", FAMILY, dsa=False))


def unregister() -> None:
    METHODS.unregister(METHOD)
    FAMILIES.unregister(FAMILY)
