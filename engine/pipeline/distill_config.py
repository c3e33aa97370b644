"""Typed configuration of a distill job; recorded verbatim in its report so a run can be repeated.

Method-specific knobs live in the family configs (``dc``, ``dm``, ``trajectory``); their
``dsa_groups`` and ``fiem_ratio`` are set by the pipeline from the job-level ``dsa`` and
``fiem_ratio`` fields, whose ``None`` means "the method's default" (see the method registry).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from engine.distill.distribution import DMConfig
from engine.distill.experts import ExpertConfig
from engine.distill.gradient import DCConfig
from engine.distill.init import InitMode
from engine.distill.schedule import DifficultySchedule
from engine.distill.trajectory import TMConfig
from engine.pipeline.prune_config import ProxyConfig, SelectionConfig

DistillKind = Literal["distill", "prune_then_distill"]


@dataclass
class InitConfig:
    """How the synthetic set starts. ``pruned`` with EL2N is Prune-then-distill.

    ``selection`` is applied inside each class with ``keep = ipc`` (mode hardest/easiest/window/ccs,
    e.g. ``window=(0.7, 0.8)`` as in the paper); ``proxy`` is the scoring run.
    """

    mode: InitMode = "real"
    prune_method: str = "el2n"
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    proxy: ProxyConfig = field(default_factory=ProxyConfig)


@dataclass
class DistillEvalConfig:
    """Fresh models trained on the synthetic set (and, beside it, a random real subset of the same IPC)."""

    seeds: int = 3
    epochs: int = 300
    lr: float = 0.01
    batch_size: int = 256
    model: str = "convnet"
    width: int = 128
    depth: int | None = None
    dsa: bool = True
    compare_random: bool = True
    full_data: bool = True
    full_epochs: int = 20
    archs: list[str] = field(default_factory=list)


@dataclass
class DistillConfig:
    """A distill or prune-then-distill job.

    Attributes:
        method: registered method name (``dc``, ``dsa``, ``dm``, ``mtt``, ``datm``, ``pad``).
        ipc: synthetic images per class.
        iterations: distillation iterations.
        init: initialisation (real, noise, or pruned = Prune-then-distill).
        model / width / depth: the network used for matching (and experts).
        dsa: siamese augmentation during matching; None = the method's default.
        dsa_strategy: '_'-joined DSA transforms; None = all, without flips for single-channel data.
        zca: ZCA-whiten real and synthetic data (trajectory matching on natural images).
        soft_labels: learn soft labels; None = the method's default (DATM, PAD).
        fiem_ratio: PAD's share of shallow parameters out of the loss; None = the method's default.
        schedule: PAD's expert data scheduler; None = the method's default (on for ``pad``).
        dc / dm / trajectory / experts: family hyper-parameters.
        evaluation: accuracy report; None skips it.
        checkpoint_every: iterations between checkpoints of the synthetic set.
    """

    method: str = "dm"
    ipc: int = 10
    iterations: int = 200
    init: InitConfig = field(default_factory=InitConfig)
    model: str = "convnet"
    width: int = 128
    depth: int | None = None
    dsa: bool | None = None
    dsa_strategy: str | None = None
    zca: bool = False
    soft_labels: bool | None = None
    fiem_ratio: float | None = None
    schedule: DifficultySchedule | None = None
    dc: DCConfig = field(default_factory=DCConfig)
    dm: DMConfig = field(default_factory=DMConfig)
    trajectory: TMConfig = field(default_factory=TMConfig)
    experts: ExpertConfig = field(default_factory=ExpertConfig)
    evaluation: DistillEvalConfig | None = field(default_factory=DistillEvalConfig)
    checkpoint_every: int = 10
    seed: int = 0
    device: str = "auto"

    @property
    def kind(self) -> DistillKind:
        return "prune_then_distill" if self.init.mode == "pruned" else "distill"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}
