"""Model registry: one table feeds ``create_model``, the CLI's choices and the API's enum.

Each architecture is registered here by name, description and the ``"module:factory"`` that builds it, so that
listing the models imports no torch; adding one is its module plus a line below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.registry import Registry, load

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    """Attributes:
        name: registry key (``convnet``).
        description: one line for the API's and the CLI's choices.
        factory: ``"module:function"`` taking ``channels, num_classes, image_size, width, depth``.
        layer_stack: the model's blocks are one sequential ``features`` stack, so FIEM can drop the
            shallowest of them from a distribution-matching embedding.
    """

    name: str
    description: str
    factory: str
    layer_stack: bool = False


MODELS: Registry[ModelSpec] = Registry("model", sort=True)


def model_names() -> list[str]:
    return MODELS.names()


def create_model(
    name: str, *, channels: int, num_classes: int, image_size: int, width: int | None = None, depth: int | None = None
) -> nn.Module:
    """Build a registered model adapted to the data's channels, resolution and class count.

    Every model exposes ``forward_features(x)`` (the penultimate embedding) and a linear ``head``
    so that feature-space scores and last-layer gradient scores work with all of them.
    """
    kwargs = {"channels": channels, "num_classes": num_classes, "image_size": image_size}
    if width is not None:
        kwargs["width"] = width
    if depth is not None:
        kwargs["depth"] = depth
    model: nn.Module = load(MODELS.get(name).factory)(**kwargs)
    return model


MODELS.register(ModelSpec("convnet", "ConvNet with instance norm (width 128, depth 3; 4 for 64px inputs)",
                          "engine.models.convnet:convnet", layer_stack=True))
MODELS.register(ModelSpec("convnet_bn", "ConvNet with batch norm", "engine.models.convnet:convnet_bn", layer_stack=True))
MODELS.register(ModelSpec("convnet_nonorm", "ConvNet without normalisation", "engine.models.convnet:convnet_nonorm",
                          layer_stack=True))
MODELS.register(ModelSpec("lenet", "LeNet-5 (padded for small inputs)", "engine.models.small:lenet", layer_stack=True))
MODELS.register(ModelSpec("mlp", "Multi-layer perceptron (width 128, 3 layers)", "engine.models.small:mlp"))
MODELS.register(ModelSpec("resnet18", "ResNet-18 with CIFAR stem (width 64)", "engine.models.resnet:resnet18"))
