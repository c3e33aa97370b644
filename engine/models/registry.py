"""Model registry: one table feeds ``create_model``, the CLI's choices and the API's enum."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

ModelFactory = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    factory: ModelFactory
    description: str


_MODELS: dict[str, ModelSpec] = {}


def register_model(name: str, description: str) -> Callable[[ModelFactory], ModelFactory]:
    def wrap(factory: ModelFactory) -> ModelFactory:
        _MODELS[name] = ModelSpec(name, factory, description)
        return factory

    return wrap


def model_names() -> list[str]:
    return sorted(_MODELS)


def create_model(
    name: str, *, channels: int, num_classes: int, image_size: int, width: int | None = None, depth: int | None = None
) -> nn.Module:
    """Build a registered model adapted to the data's channels, resolution and class count.

    Every model exposes ``forward_features(x)`` (the penultimate embedding) and a linear ``head``
    so that feature-space scores and last-layer gradient scores work with all of them.
    """
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(model_names())}")
    kwargs = {"channels": channels, "num_classes": num_classes, "image_size": image_size}
    if width is not None:
        kwargs["width"] = width
    if depth is not None:
        kwargs["depth"] = depth
    return _MODELS[name].factory(**kwargs)
