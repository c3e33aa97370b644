"""Typed configuration of a distill job; recorded verbatim in its report so a run can be repeated.

Method-specific knobs live in the family configs, one per registered option group in ``options``
(``gradient``, ``distribution``, ``trajectory``, ``experts``: ``engine.distill.families``); their
``dsa_groups`` and ``fiem_ratio`` are set by the pipeline from the job-level ``dsa`` and
``fiem_ratio`` fields, whose ``None`` means "the method's default" (see the method registry).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from engine.config_fields import like, setting
from engine.device import DevicePreference
from engine.distill.families import options_from
from engine.distill.schedule import DifficultySchedule
from engine.distill.start import InitMode
from engine.pipeline.prune_config import EvalConfig, ProxyConfig, PruneConfig
from engine.select.config import RankingMode, SelectionConfig

# A distill job whose synthetic set starts from a pruned subset is a prune_then_distill job.
PlainDistillKind = Literal["distill"]
PruneThenDistillKind = Literal["prune_then_distill"]
DistillKind = Literal[PlainDistillKind, PruneThenDistillKind]


@dataclass
class PrunedStartConfig(SelectionConfig):
    """How prune-then-distill picks each class's ``ipc`` starting images from the score's ranking.

    001 Sec. 4.4 (Fig. 1): under aggressive compression the samples with the highest EL2N are often
    mislabelled and the lowest carry too little, so the paper keeps the 70th-80th percentile of each
    class. When ``ipc`` outgrows that window (a class of fewer than ``10 * ipc`` samples) the start takes
    the ``ipc`` samples just below the window's upper end instead of failing.
    """

    mode: RankingMode = setting(
        "window", "within each class: the hardest, the easiest, a percentile window of the ranking, or CCS strata"
    )
    window: tuple[float, float] | None = setting(
        (0.7, 0.8), "[lo, hi] quantiles of each class's importance ranking kept in 'window' mode"
    )


@dataclass
class InitConfig:
    """How the synthetic set starts. ``pruned`` with EL2N is Prune-then-distill; ``auto`` chooses between the
    coreset and random real images by method and IPC (``engine.distill.init.resolve_start``).

    ``selection`` is applied inside each class with ``keep = ipc``; ``proxy`` is the scoring run.
    """

    mode: InitMode = "auto"
    prune_method: str = "el2n"  # 001 Sec. 4.4 prunes by EL2N (Paul et al. 2021)
    selection: PrunedStartConfig = field(default_factory=PrunedStartConfig)
    proxy: ProxyConfig = field(default_factory=ProxyConfig)


@dataclass
class DistillEvalConfig:
    """Fresh models trained on the synthetic set (and, beside it, a random real subset of the same IPC)."""

    seeds: int = like(EvalConfig, "seeds")
    epochs: int = setting(300, "epochs of each evaluation model on the synthetic set", ge=1, le=5000)
    lr: float = setting(0.01, "learning rate where the method learns none", gt=0, le=10)
    batch_size: int = setting(256, ge=1, le=8192)
    model: str = EvalConfig.model
    width: int = like(ProxyConfig, "width", default=128)
    depth: int | None = None
    dsa: bool = setting(True, "siamese augmentation while training on the synthetic set")
    compare_random: bool = setting(True, "also evaluate a random real subset of the same IPC")
    compare_coreset: bool = setting(
        True, "also evaluate the coreset a default prune job keeps at the same size, and say which is worth most"
    )
    full_data: bool = like(EvalConfig, "full_data")
    full_epochs: int = setting(20, "epochs of the full-data model", ge=1, le=1000)
    archs: list[str] = field(default_factory=list)


@dataclass
class DistillConfig:
    """A distill or prune-then-distill job.

    Fields declared with ``setting`` carry their own help; the others:

    Attributes:
        method: registered method name (``dc``, ``dsa``, ``dm``, ``mtt``, ``datm``, ``pad``).
        init: initialisation (real, noise, or pruned = Prune-then-distill).
        depth: the depth of the matching network.
        dsa_strategy: '_'-joined DSA transforms; None = all, without flips for single-channel data.
        schedule: PAD's expert data scheduler; None = the method's default (on for ``pad``).
        options: family hyper-parameters, a config per registered option group by its name.
        evaluation: accuracy report; None skips it.
    """

    method: str = "dm"
    ipc: int = setting(10, "synthetic images per class", ge=1, le=10_000)
    iterations: int = setting(200, "distillation iterations", ge=1, le=100_000)
    init: InitConfig = field(default_factory=InitConfig)
    model: str = setting("convnet", "network used for matching and for experts")
    width: int = like(ProxyConfig, "width", default=128)
    depth: int | None = None
    dsa: bool | None = setting(None, "siamese augmentation while matching (left out: the method's default)")
    dsa_strategy: str | None = None
    zca: bool | None = setting(
        None, "ZCA-whiten real and synthetic images; unset: the method's default (on for DATM and PAD on colour images, as their papers run)"
    )
    soft_labels: bool | None = setting(
        None, "learn soft labels from expert logits (trajectory methods; left out: the method's default)"
    )
    fiem_ratio: float | None = setting(
        None,
        "share of shallow-layer parameters excluded from matching (PAD; left out: the method's default)",
        ge=0,
        lt=1,
    )
    fiex_ratio: float = setting(
        0.0,
        "DC, DSA and DM: share of each class's real images left out of matching by EL2N (PAD's FIEX, 003 App. A.1): "
        "the hardest up to IPC 50, the easiest above; 0 matches all, as DC and DM run",
        ge=0,
        lt=1,
    )
    schedule: DifficultySchedule | None = None
    options: dict[str, Any] = field(default_factory=options_from)
    evaluation: DistillEvalConfig | None = field(default_factory=DistillEvalConfig)
    checkpoint_every: int = setting(
        10, "iterations between checkpoints of the synthetic set, from which a re-run resumes", ge=1, le=100_000
    )
    seed: int = like(PruneConfig, "seed")
    device: DevicePreference = PruneConfig.device

    @property
    def kind(self) -> DistillKind:
        return "prune_then_distill" if self.init.mode == "pruned" else "distill"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}
