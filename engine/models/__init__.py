"""Models that adapt to channels, resolution and class count; see ``create_model``."""

from engine.models.registry import MODELS, ModelSpec, create_model, model_names

__all__ = ["MODELS", "ModelSpec", "create_model", "model_names"]
