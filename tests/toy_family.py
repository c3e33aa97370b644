"""A toy distillation family for tests/test_distill_families.py: match each class's mean pixels. Its module and
its registration (in the test) are all a new family needs; it reuses DM's settings (batch_real, lr_images)."""

from __future__ import annotations

import torch

from engine.distill.base import ModelFactory, RealData, UpdateFn
from engine.distill.distribution_config import DMConfig
from engine.distill.families import MatchSettings
from engine.distill.synthetic import SyntheticSet


class MeanPixelMatcher:
    def __init__(self, real: RealData, config: DMConfig) -> None:
        self.real, self.config = real, config

    def param_groups(self, synthetic: SyntheticSet) -> list[dict]:
        return [{"params": [synthetic.images], "lr": self.config.lr_images, "momentum": self.config.momentum}]

    def iterate(self, synthetic: SyntheticSet, update: UpdateFn, generator: torch.Generator, iteration: int) -> float:
        loss = torch.zeros((), device=synthetic.images.device)
        for c in range(synthetic.num_classes):
            real = self.real.sample(c, self.config.batch_real, generator)
            loss = loss + (real.mean(0) - synthetic.images[synthetic.class_slice(c)].mean(0)).pow(2).sum()
        update(loss)
        return float(loss.detach())


def build(config: DMConfig, settings: MatchSettings, real: RealData, new_model: ModelFactory,
          experts: object) -> MeanPixelMatcher:
    return MeanPixelMatcher(real, config)
