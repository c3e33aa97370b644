"""Method registry: one table feeds the pipeline, the CLI's ``--method`` choices and the API's enum."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Family = Literal["gradient", "distribution", "trajectory"]


@dataclass(frozen=True)
class MethodSpec:
    """A distillation method and the defaults that distinguish it from its family's base.

    Attributes:
        name: registry key (``mtt``).
        title: the method's name in the literature.
        reference: the paper that defines it.
        family: which matcher runs it (gradient, distribution or trajectory matching).
        dsa: differentiable siamese augmentation during matching by default.
        soft_labels: learn soft labels initialised from expert logits (DATM).
        widen_start_range: grow the start-epoch range during distillation (DATM).
        difficulty_schedule: train experts with the EL2N data scheduler (PAD's FIEX).
        fiem_ratio: default share of shallow parameters left out of matching (PAD's FIEM) at
            IPC > 1; PAD uses none at IPC 1, where low-level information is still needed.
    """

    name: str
    title: str
    reference: str
    family: Family
    dsa: bool = True
    soft_labels: bool = False
    widen_start_range: bool = False
    difficulty_schedule: bool = False
    fiem_ratio: float = 0.0

    @property
    def uses_experts(self) -> bool:
        return self.family == "trajectory"

    def default_fiem_ratio(self, ipc: int) -> float:
        return 0.0 if ipc == 1 else self.fiem_ratio


_METHODS: dict[str, MethodSpec] = {}


def register_method(spec: MethodSpec) -> MethodSpec:
    _METHODS[spec.name] = spec
    return spec


def get_method(name: str) -> MethodSpec:
    if name not in _METHODS:
        raise ValueError(f"unknown distillation method {name!r}; choose one of {', '.join(method_names())}")
    return _METHODS[name]


def method_names() -> list[str]:
    return list(_METHODS)


register_method(MethodSpec(
    "dc", "Dataset Condensation (gradient matching)",
    "Zhao, Mopuri, Bilen. Dataset Condensation with Gradient Matching. ICLR 2021", "gradient", dsa=False,
))
register_method(MethodSpec(
    "dsa", "Differentiable Siamese Augmentation (gradient matching)",
    "Zhao, Bilen. Dataset Condensation with Differentiable Siamese Augmentation. ICML 2021", "gradient",
))
register_method(MethodSpec(
    "dm", "Distribution Matching",
    "Zhao, Bilen. Dataset Condensation with Distribution Matching. WACV 2023", "distribution",
))
register_method(MethodSpec(
    "mtt", "Matching Training Trajectories",
    "Cazenavette, Wang, Torralba, Efros, Zhu. Dataset Distillation by Matching Training Trajectories. CVPR 2022",
    "trajectory",
))
register_method(MethodSpec(
    "datm", "Difficulty-aligned trajectory matching (soft labels, widening start range)",
    "Guo, Wang, Chen, Lin, You. Towards Lossless Dataset Distillation via Difficulty-Aligned Trajectory Matching. ICLR 2024",
    "trajectory", soft_labels=True, widen_start_range=True,
))
register_method(MethodSpec(
    "pad", "Prioritize Alignment in Dataset Distillation (FIEX scheduler + FIEM)",
    "Li, Wang, Zhou, Zhao, Shao, You. Prioritize Alignment in Dataset Distillation. 2024",
    "trajectory", soft_labels=True, widen_start_range=True, difficulty_schedule=True, fiem_ratio=0.25,
))
