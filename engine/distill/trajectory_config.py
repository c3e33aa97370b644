"""Trajectory matching's settings (MTT, DATM-style, PAD): light, so that the API and the CLI read them without
torch. The matcher is ``engine.distill.trajectory``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from engine.config_fields import setting
from engine.distill.families import OptionProblem

Unroll = Literal["checkpoint", "graph"]
# MTT's fixed upper start epoch under the default 20-epoch experts (its CIFAR runs use 20 of 50 at IPC 10).
MTT_MAX_START_EPOCH = 10


@dataclass
class TrajectoryConfig:
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

    Fields declared with ``setting`` are the family's options (``lr`` is the API's name for ``lr_init``).
    """

    syn_steps: int = setting(20, "student steps per iteration (N)", ge=1, le=500)
    expert_epochs: int = setting(2, "expert epochs matched (M)", ge=1, le=500)
    min_start_epoch: int | None = setting(None, "lowest start epoch (T-); left out: the method's for the IPC", ge=0, le=1000)
    max_start_epoch: int | None = setting(
        None, "highest start epoch at the start (T); left out: the method's (mtt 10; datm/pad by IPC, PAD Table 10)",
        ge=0, le=1000,
    )
    max_start_epoch_final: int | None = setting(
        None, "highest start epoch at the end of the run (T+; datm and pad grow T to it); left out: the method's for the IPC", ge=0, le=1000
    )
    widen_iterations: int = 0
    batch_syn: int | None = setting(None, "synthetic minibatch; left out: the whole set", ge=1, le=100_000)
    lr_images: float = 100.0
    lr_lr: float = 1e-5
    lr_labels: float = setting(5.0, "soft-label learning rate (datm, pad)", gt=0, le=1e4)
    lr_init: float = setting(0.01, "initial learnable student learning rate", gt=0, le=10, name="lr")
    momentum: float = 0.5
    label_momentum: float = 0.9
    dsa_groups: tuple[str, ...] | None = ("color", "crop", "cutout", "scale", "rotate")
    fiem_ratio: float = 0.0
    unroll: Unroll = "checkpoint"


def fixed_start_range(config: TrajectoryConfig) -> tuple[int, int]:
    """(T-, T) with an unset bound at MTT's: 0 and ``MTT_MAX_START_EPOCH``."""
    high = config.max_start_epoch if config.max_start_epoch is not None else MTT_MAX_START_EPOCH
    return config.min_start_epoch or 0, high


def check_options(options: dict[str, Any]) -> list[OptionProblem]:
    """The student matches ``expert_epochs`` ahead of a start epoch: every expert must run longer than that."""
    matched, trained = options["trajectory"].expert_epochs, options["experts"].epochs
    if trained <= matched:
        return [OptionProblem("experts.epochs", f"must exceed trajectory.expert_epochs={matched}: the student matches "
                                                "the expert that many epochs ahead")]
    return []
