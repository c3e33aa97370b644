"""Typed configuration of a prune job; recorded verbatim in its report so a run can be repeated.

These dataclasses are the one place where a job's defaults, their help and their bounds are declared
(``engine.config_fields.setting``): the API's schemas and the CLI's options read them from here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from engine.config_fields import like, setting
from engine.device import DevicePreference
from engine.scores import score_names
from engine.select.auto import AUTO
from engine.select.config import SelectionConfig
from engine.train.config import TrainConfig

PruneKind = Literal["prune"]


def prune_method_names() -> list[str]:
    """What a prune job's ``method`` accepts: ``auto`` (Condense chooses) or a score's name."""
    return [AUTO, *score_names()]


@dataclass
class ProxyConfig:
    """The proxy training run that produces every dynamics-based score at once.

    A smaller or shorter proxy than the target model is "selection via proxy" (Coleman et al., 2020).
    """

    model: str = "convnet"
    width: int = setting(64, "ConvNet width (channels)", ge=1, le=1024)
    depth: int | None = None
    epochs: int = setting(10, "training epochs", ge=1, le=1000)
    batch_size: int = setting(TrainConfig.batch_size, ge=1, le=8192)
    lr: float = setting(
        TrainConfig.lr, f"learning rate (SGD, momentum {TrainConfig.momentum}, cosine schedule)", gt=0, le=10
    )
    weight_decay: float = TrainConfig.weight_decay
    augment: bool = False


@dataclass
class EvalConfig:
    """Training fresh models on the subset to prove what it is worth."""

    seeds: int = setting(3, "fresh models trained for the accuracy report", ge=1, le=20)
    epochs: int = setting(20, "epochs of each evaluation model", ge=1, le=1000)
    model: str = "convnet"
    width: int = like(ProxyConfig, "width")
    depth: int | None = None
    batch_size: int = TrainConfig.batch_size
    lr: float = TrainConfig.lr
    compare_random: bool = setting(True, "also evaluate a random subset of the same size and class balance")
    full_data: bool = setting(True, "also evaluate training on all data")
    archs: list[str] = field(default_factory=list)


@dataclass
class PruneConfig:
    method: str = setting(
        "auto",
        "the score that ranks every training sample, which then decides the selection; auto: Condense chooses "
        "the score and policy for the budget and says which in the report",
    )
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    evaluation: EvalConfig | None = field(default_factory=EvalConfig)
    score_params: dict[str, Any] = field(default_factory=dict)
    # numpy's and torch's seeds are 32-bit; a report must be re-runnable with its seed.
    seed: int = setting(0, "seed of the whole run (recorded in the report)", ge=0, le=2**31 - 1)
    device: DevicePreference = "auto"

    @property
    def kind(self) -> PruneKind:
        return "prune"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
