"""Distribution matching's settings (DM): light, so that the API and the CLI read them without torch.
The matcher is ``engine.distill.distribution``. Fields declared with ``setting`` are the family's options."""

from __future__ import annotations

from dataclasses import dataclass

from engine.config_fields import like
from engine.distill.gradient_config import GradientConfig
from engine.models.registry import MODELS


@dataclass
class DistributionConfig:
    batch_real: int = like(GradientConfig, "batch_real")
    lr_images: float = 1.0
    momentum: float = 0.5
    dsa_groups: tuple[str, ...] | None = ("color", "crop", "cutout", "scale", "rotate")
    fiem_ratio: float = 0.0


FIEM_NEEDS = "FIEM for distribution matching needs a model with a sequential `features` stack (the ConvNets)"


def has_layer_stack(model_name: str) -> bool:
    """Whether FIEM can drop shallow layers from ``model_name``'s embedding (its registry entry says)."""
    return MODELS.get(model_name).layer_stack
