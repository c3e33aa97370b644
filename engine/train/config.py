"""Training hyper-parameters shared by proxy runs, evaluation runs and expert trajectories."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainConfig:
    """SGD with momentum 0.9 and a per-step cosine schedule, the usual recipe of this literature.

    Its defaults are that recipe: the proxy and evaluation configs take their batch size, learning rate
    and weight decay from here.
    """

    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    augment: bool = False
    amp: bool = True
    seed: int = 0
    device: str = "auto"
