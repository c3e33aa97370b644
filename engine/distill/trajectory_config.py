"""Trajectory matching's settings (MTT, DATM-style, PAD): light, so that the API and the CLI read them without
torch. The matcher is ``engine.distill.trajectory``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Unroll = Literal["checkpoint", "graph"]
# MTT's fixed upper start epoch under the default 20-epoch experts (its CIFAR runs use 20 of 50 at IPC 10).
MTT_MAX_START_EPOCH = 10


@dataclass
class TMConfig:
    """Trajectory-matching hyper-parameters (MTT's names in brackets).

    Attributes:
        syn_steps: student steps per iteration (N, ``syn_steps``).
        expert_epochs: expert epochs the student must cover (M, ``expert_epochs``).
        min_start_epoch: lowest start epoch (DATM's T-); None: the method's default for the IPC (0 here).
        max_start_epoch: highest start epoch at the beginning (``max_start_epoch``, DATM's T); None: the
            method's default for the IPC (``MTT_MAX_START_EPOCH`` here). Jobs resolve both in the pipeline.
        max_start_epoch_final: DATM's T+: the upper bound grows linearly to it; None keeps it fixed.
        widen_iterations: iterations over which the upper bound grows from T to T+.
        batch_syn: synthetic minibatch per student step; None uses the whole set.
        lr_images / lr_lr / lr_labels: optimiser learning rates of pixels, student lr and soft labels.
        lr_init: initial student learning rate (``lr_teacher``).
        dsa_groups: DSA transforms applied (per sample) inside every student step; None disables.
        fiem_ratio: PAD's share of shallow parameters left out of the loss.
        unroll: "checkpoint" (bounded memory) or "graph" (the reference's full graph, for comparison).
    """

    syn_steps: int = 20
    expert_epochs: int = 2
    min_start_epoch: int | None = None
    max_start_epoch: int | None = None
    max_start_epoch_final: int | None = None
    widen_iterations: int = 0
    batch_syn: int | None = None
    lr_images: float = 100.0
    lr_lr: float = 1e-5
    lr_labels: float = 5.0
    lr_init: float = 0.01
    momentum: float = 0.5
    label_momentum: float = 0.9
    dsa_groups: tuple[str, ...] | None = ("color", "crop", "cutout", "scale", "rotate")
    fiem_ratio: float = 0.0
    unroll: Unroll = "checkpoint"


def fixed_start_range(config: TMConfig) -> tuple[int, int]:
    """(T-, T) with an unset bound at MTT's: 0 and ``MTT_MAX_START_EPOCH``."""
    high = config.max_start_epoch if config.max_start_epoch is not None else MTT_MAX_START_EPOCH
    return config.min_start_epoch or 0, high
