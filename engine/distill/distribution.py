"""Distribution matching (DM; Zhao & Bilen, WACV 2023).

Every iteration samples a freshly initialised embedder and pulls each class's mean synthetic
embedding towards the mean embedding of a real batch of that class. With FIEM, the embedding is
the concatenation of every block's output (shallow to deep) and the shallowest share is dropped,
as PAD does for DM; without it, it is the model's penultimate embedding.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from engine.distill.augment import apply_dsa, sample_dsa
from engine.distill.base import ModelFactory, RealData, UpdateFn
from engine.distill.families import MatchSettings
from engine.distill.distribution_config import FIEM_NEEDS, DistributionConfig
from engine.distill.synthetic import SyntheticSet


def layer_embeddings(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Each block's output of a ConvNet-style ``features`` stack, flattened and concatenated shallow to deep."""
    features = getattr(model, "features", None)
    if not isinstance(features, nn.Sequential):
        raise ValueError(FIEM_NEEDS)
    outputs, h = [], x
    for layer in features:
        h = layer(h)
        if isinstance(layer, nn.AvgPool2d):
            outputs.append(h.flatten(1))
    if not isinstance(features[-1], nn.AvgPool2d):
        outputs.append(h.flatten(1))
    return torch.cat(outputs, 1)


class DistributionMatcher:
    def __init__(self, real: RealData, new_model: ModelFactory, config: DistributionConfig) -> None:
        self.real = real
        self.new_model = new_model
        self.config = config

    def param_groups(self, synthetic: SyntheticSet) -> list[dict]:
        return [{"params": [synthetic.images], "lr": self.config.lr_images, "momentum": self.config.momentum}]

    def _embed(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.config.fiem_ratio <= 0:
            return model.forward_features(x)
        h = layer_embeddings(model, x)
        return h[:, int(h.shape[1] * self.config.fiem_ratio) :]

    def iterate(self, synthetic: SyntheticSet, update: UpdateFn, generator: torch.Generator, iteration: int) -> float:
        del iteration  # no schedule: every iteration is alike
        cfg = self.config
        model = self.new_model().to(synthetic.images.device)
        for p in model.parameters():
            p.requires_grad_(False)
        real_parts, syn_parts = [], []
        for c in range(synthetic.num_classes):
            real_parts.append(self.real.sample(c, cfg.batch_real, generator))
            syn_parts.append(synthetic.images[synthetic.class_slice(c)])
        sizes_real = [len(r) for r in real_parts]
        sizes_syn = [len(s) for s in syn_parts]
        x_real, x_syn = torch.cat(real_parts), torch.cat(syn_parts)
        if cfg.dsa_groups:
            # One siamese draw per class, expanded to that class's samples in both batches, so
            # all classes go through a single forward pass.
            draws = [sample_dsa(cfg.dsa_groups, 1, generator) for _ in range(synthetic.num_classes)]
            x_real = _apply_per_class(x_real, draws, sizes_real)
            x_syn = _apply_per_class(x_syn, draws, sizes_syn)
        with torch.no_grad():
            emb_real = self._embed(model, x_real)
        emb_syn = self._embed(model, x_syn)
        loss = torch.zeros((), device=x_syn.device)
        for r, s in zip(emb_real.split(sizes_real), emb_syn.split(sizes_syn), strict=True):
            loss = loss + (r.mean(0) - s.mean(0)).pow(2).sum()
        update(loss)
        return float(loss.detach())


def _apply_per_class(x: torch.Tensor, draws: list, sizes: list[int]) -> torch.Tensor:
    return torch.cat([apply_dsa(part, draw.select(torch.zeros(len(part), dtype=torch.long)))
                      for part, draw in zip(x.split(sizes), draws, strict=True)])


def build(config: DistributionConfig, settings: MatchSettings, real: RealData, new_model: ModelFactory,
          experts: object) -> DistributionMatcher:
    """The distribution family's matcher (``engine.distill.families``)."""
    return DistributionMatcher(real, new_model, replace(config, dsa_groups=settings.dsa_groups,
                                                        fiem_ratio=settings.fiem_ratio))
