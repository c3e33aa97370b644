"""How experts for trajectory matching are trained: light, so that the API and the CLI read it without torch.
Training, storage and reuse are ``engine.distill.experts``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ExpertConfig:
    """Expert training as in MTT: SGD without momentum or weight decay, DSA on every batch."""

    num_experts: int = 5
    epochs: int = 20
    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 256
    augment: bool = True
