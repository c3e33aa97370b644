"""Models that adapt to channels, resolution and class count; see ``create_model``."""

from engine.models import convnet, resnet, small  # noqa: F401  (registers the architectures)
from engine.models.registry import create_model, model_names, register_model

__all__ = ["create_model", "model_names", "register_model"]
