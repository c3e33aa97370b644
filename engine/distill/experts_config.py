"""How experts for trajectory matching are trained: light, so that the API and the CLI read it without torch.
Training, storage and reuse are ``engine.distill.experts``."""

from __future__ import annotations

from dataclasses import dataclass

from engine.config_fields import setting


@dataclass
class ExpertConfig:
    """Expert training as in MTT: SGD without momentum or weight decay, DSA on every batch. Fields declared with
    ``setting`` are the trajectory family's ``experts`` options (``count`` is the API's name for the number)."""

    num_experts: int = setting(5, "expert trajectories to train", ge=1, le=100, name="count")
    epochs: int = setting(20, "epochs of each expert", ge=2, le=1000)
    lr: float = setting(0.01, "expert learning rate", gt=0, le=10)
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = setting(256, "expert minibatch", ge=1, le=8192)
    augment: bool = True
