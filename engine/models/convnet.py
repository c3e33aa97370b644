"""The ConvNet used across the dataset-distillation and pruning literature.

Blocks of 3x3 conv -> norm -> ReLU -> 2x2 average pooling, then a linear head. "Instance
norm" in this literature is GroupNorm with one group per channel (affine), which unlike
BatchNorm does not mix samples, so per-sample outputs do not depend on the batch.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn


NormKind = Literal["instance", "batch", "none"]


def default_depth(image_size: int) -> int:
    """3 blocks for 28-32px, 4 for 64px; fewer for tiny inputs, where instance norm over a 1-2 pixel
    map would erase the signal (8x8 digits get 2 blocks: 8 -> 4 -> 2)."""
    if image_size >= 64:
        return 4
    return min(3, max(1, image_size.bit_length() - 2))


def _norm(kind: NormKind, width: int) -> nn.Module:
    if kind == "instance":
        return nn.GroupNorm(width, width, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(width)
    return nn.Identity()


class ConvNet(nn.Module):
    def __init__(
        self,
        channels: int,
        num_classes: int,
        image_size: int,
        width: int = 128,
        depth: int | None = None,
        norm: NormKind = "instance",
    ) -> None:
        super().__init__()
        depth = depth or default_depth(image_size)
        layers: list[nn.Module] = []
        in_ch, size = channels, image_size
        for _ in range(depth):
            layers += [nn.Conv2d(in_ch, width, 3, padding=1), _norm(norm, width), nn.ReLU(inplace=True)]
            # Tiny inputs (e.g. 8x8 digits at depth 4) would pool to nothing; stop pooling at 1 pixel.
            if size >= 2:
                layers.append(nn.AvgPool2d(2))
                size //= 2
            in_ch = width
        self.features = nn.Sequential(*layers)
        self.embed_dim = width * size * size
        self.head = nn.Linear(self.embed_dim, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


def convnet(channels: int, num_classes: int, image_size: int, width: int = 128, depth: int | None = None) -> ConvNet:
    return ConvNet(channels, num_classes, image_size, width, depth, norm="instance")


def convnet_bn(channels: int, num_classes: int, image_size: int, width: int = 128, depth: int | None = None) -> ConvNet:
    return ConvNet(channels, num_classes, image_size, width, depth, norm="batch")


def convnet_nonorm(
    channels: int, num_classes: int, image_size: int, width: int = 128, depth: int | None = None
) -> ConvNet:
    return ConvNet(channels, num_classes, image_size, width, depth, norm="none")
