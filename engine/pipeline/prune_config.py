"""Typed configuration of a prune job; recorded verbatim in its report so a run can be repeated."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

SelectionMode = Literal["hardest", "easiest", "window", "ccs"]


@dataclass
class ProxyConfig:
    """The proxy training run that produces every dynamics-based score at once.

    A smaller or shorter proxy than the target model is "selection via proxy" (Coleman et al., 2020).
    """

    model: str = "convnet"
    width: int = 64
    depth: int | None = None
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.05
    weight_decay: float = 5e-4
    augment: bool = False


@dataclass
class SelectionConfig:
    """Which samples to keep once every sample has a score.

    ``keep`` is a fraction in (0, 1] or, when ``keep >= 1`` and integral, an absolute count.
    """

    keep: float = 0.1
    mode: SelectionMode = "hardest"
    window: tuple[float, float] | None = None
    class_balanced: bool = True
    ccs_hard_cutoff: float = 0.1
    ccs_strata: int = 50
    weights: bool = False


@dataclass
class EvalConfig:
    """Training fresh models on the subset to prove what it is worth."""

    seeds: int = 3
    epochs: int = 20
    model: str = "convnet"
    width: int = 64
    depth: int | None = None
    batch_size: int = 128
    lr: float = 0.05
    compare_random: bool = True
    full_data: bool = True
    archs: list[str] = field(default_factory=list)


@dataclass
class PruneConfig:
    method: str = "el2n"
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    evaluation: EvalConfig | None = field(default_factory=EvalConfig)
    score_params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    device: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
