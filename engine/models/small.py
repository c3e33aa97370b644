"""Small reference architectures used for cross-architecture evaluation: LeNet and an MLP."""

from __future__ import annotations

import torch
from torch import nn



class LeNet(nn.Module):
    def __init__(self, channels: int, num_classes: int, image_size: int, width: int = 6) -> None:
        super().__init__()
        # "Same" padding keeps LeNet usable below 28px (e.g. 8x8 digits), where valid convs would vanish.
        pad = 2
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 5, padding=pad),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 16, 5, padding=pad),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        with torch.no_grad():
            flat = self.features(torch.zeros(1, channels, image_size, image_size)).numel()
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(flat, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU())
        self.embed_dim = 84
        self.head = nn.Linear(84, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


class MLP(nn.Module):
    def __init__(self, channels: int, num_classes: int, image_size: int, width: int = 128, depth: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        in_dim = channels * image_size * image_size
        for _ in range(max(depth - 1, 1)):
            layers += [nn.Linear(in_dim, width), nn.ReLU()]
            in_dim = width
        self.body = nn.Sequential(*layers)
        self.embed_dim = in_dim
        self.head = nn.Linear(in_dim, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


def lenet(channels: int, num_classes: int, image_size: int, width: int = 6, depth: int | None = None) -> LeNet:
    del depth
    return LeNet(channels, num_classes, image_size, width)


def mlp(channels: int, num_classes: int, image_size: int, width: int = 128, depth: int | None = None) -> MLP:
    return MLP(channels, num_classes, image_size, width, depth or 3)
