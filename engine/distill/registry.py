"""Method registry: one table feeds the pipeline, the CLI's ``--method`` choices and the API's enum."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from engine.config_fields import offered
from engine.distill.families import FAMILIES, families_using
from engine.registry import Registry

T = TypeVar("T")


@dataclass(frozen=True)
class MethodSpec:
    """A distillation method and the defaults that distinguish it from its family's base.

    Attributes:
        name: registry key (``mtt``).
        title: the method's name in the literature.
        reference: the paper that defines it.
        family: which family's matcher runs it (``engine.distill.families``: gradient, distribution, trajectory).
        dsa: differentiable siamese augmentation during matching by default.
        soft_labels: learn soft labels initialised from expert logits (DATM), up to ``soft_labels_up_to_ipc``.
        soft_labels_up_to_ipc: the largest IPC at which ``soft_labels`` holds by default (None: every IPC); above
            it the method learns hard labels unless a job asks for soft ones. Soft labels start from a label
            model's logits (the first expert's last checkpoint), and a model trained on them learns that model's
            function (``bench.distill --parts labels``); at IPC 50 the hard labels of the same runs are worth more.
            Measured by ``bench.distill_trials`` at IPC 50 (CPU scale: 8-epoch experts, 3 seeds, paired), hard
            over soft labels: DATM-style +2.49 ± 0.18 on MNIST and +4.81 ± 0.45 on Fashion-MNIST, PAD +2.98 ± 0.31
            and +5.34 ± 0.42, which turns their loss to random real images into a gain (PAD +0.98 ± 0.07 and
            +2.63 ± 0.75, DATM-style +0.95 ± 0.04 and +2.57 ± 0.70). With 30-epoch experts their soft labels still
            fell short of MTT's hard ones at IPC 50 (``bench/results/distill-cpu.md``). IPC 1 and 10 keep the
            papers' soft labels: at IPC 1 DATM-style's hard labels were within noise of them (-0.99 ± 1.49 on
            MNIST, +0.26 ± 0.33 on Fashion-MNIST); IPC 10 and PAD at IPC 1 are not measured.
        widen_start_range: grow the start-epoch range during distillation (DATM).
        difficulty_schedule: train experts with the EL2N data scheduler (PAD's FIEX).
        fiem: leave shallow parameters out of matching by default (PAD's FIEM), the share by IPC
            (``FIEM_BY_IPC``).
        zca: ZCA-whiten colour images by default (``default_zca``). PAD (003 App. B: "by default, ZCA
            whitening is applied in all the experiments") and DATM, whose settings it keeps, run every
            experiment so, all of them on colour photographs (CIFAR, Tiny ImageNet). Grayscale digits stay
            unwhitened: on scikit-learn's digits at IPC 1 whitening cut DATM's margin over random real images
            to 10.7 points and PAD's to 12.3 (``tests/test_distill_accuracy.py``, which holds both to 15).
        coreset_start_up_to_ipc: the largest IPC at which ``init: auto`` starts from the coreset a default
            prune job keeps (``engine.pipeline.coreset_row``) instead of random real images; 0 where a
            coreset start has not measured better. Set only from ``bench.distill_trials`` (3 seeds, paired).
            DM: at IPC 10, 200 iterations, a coreset start beat a random real one by +1.53 ± 0.15 points on
            MNIST and +1.90 ± 0.11 on Fashion-MNIST; at IPC 1 it was within noise (+0.71 ± 0.42, -0.26 ±
            0.33), at IPC 50 within noise on MNIST (+0.44 ± 0.18) and worse on Fashion-MNIST (-0.88 ± 0.15).
            DC (5 outer iterations at that scale): at IPC 10 +1.60 ± 0.06 on MNIST and +3.91 ± 0.29 on
            Fashion-MNIST over its random real start, and above the coreset alone (+0.27, +1.58). DSA at IPC 10:
            +1.63 ± 0.17 and +3.51 ± 0.21 over its random real start (+0.32 ± 0.17, within noise, and +1.27 ±
            0.32 above the coreset alone). DATM-style at IPC 10: +1.20 ± 0.28 and +1.32 ± 0.29 over its random
            real start, though level with the coreset alone on MNIST (+0.00 ± 0.33) and below it on
            Fashion-MNIST (-2.36 ± 0.77; the job's coreset row says so). At IPC 1 (50 iterations): DC +21.80 ±
            1.58 on MNIST and +2.01 ± 0.95 (within noise) on Fashion-MNIST, DSA +22.22 ± 1.41 and +2.08 ± 1.18
            (within noise), DATM-style +6.83 ± 0.12 on MNIST but worse on Fashion-MNIST (-3.23 ± 0.33), hence its
            ``coreset_start_from_ipc`` of 2 (IPC 2 to 9 are not measured). At IPC 50 a coreset start did not
            measure better on both: DC +0.60 ± 0.16 on MNIST but -0.49 ± 0.09 on Fashion-MNIST, DSA +0.58 ± 0.19
            and -0.38 ± 0.11 (one outer iteration at that scale, so mostly the start itself), DATM-style (hard
            labels both ways) +0.34 ± 0.05 and -0.36 ± 0.46; all keep random real starts above IPC 10. PAD at IPC 10: +1.23 ± 0.20 on MNIST but within noise on Fashion-MNIST (+0.99 ±
            0.34), and MTT +1.11 ± 0.33 on MNIST but within noise on Fashion-MNIST (-0.19 ± 0.77), both below
            or level with the coreset they started from, so both keep random real starts
            (``bench/results/distill-trials-cpu.md``).
        coreset_start_from_ipc: the smallest IPC at which ``init: auto`` starts from the coreset (1: every IPC up
            to ``coreset_start_up_to_ipc``); above 1 where a coreset start measured worse at a small IPC.
    """

    name: str
    title: str
    reference: str
    family: str
    dsa: bool = True
    soft_labels: bool = False
    soft_labels_up_to_ipc: int | None = None
    widen_start_range: bool = False
    difficulty_schedule: bool = False
    fiem: bool = False
    zca: bool = False
    coreset_start_up_to_ipc: int = 0
    coreset_start_from_ipc: int = 1

    @property
    def description(self) -> str:
        """The registry's one line: the method's name in the literature."""
        return self.title

    @property
    def uses_experts(self) -> bool:
        return FAMILIES.get(self.family).uses_experts

    def default_zca(self, channels: int) -> bool:
        return self.zca and channels == 3

    def default_soft_labels(self, ipc: int) -> bool:
        return self.soft_labels and (self.soft_labels_up_to_ipc is None or ipc <= self.soft_labels_up_to_ipc)

    def default_fiem_ratio(self, ipc: int) -> float:
        return by_ipc(FIEM_BY_IPC, ipc) if self.fiem else 0.0


# PAD Table 10 (App.), CIFAR-10 rows: the 10-class benchmark, like MNIST and Fashion-MNIST. Each entry holds
# up to and including its IPC; None is every larger IPC.
# FIEM's alpha: none at IPC 1, where low-level information is still needed; more as the IPC grows.
FIEM_BY_IPC: tuple[tuple[int | None, float], ...] = ((1, 0.0), (50, 0.25), (500, 0.5), (None, 0.75))
# DATM/PAD's start epochs (T-, T, T+), in epochs of PAD's expert runs: small, early ranges at low IPC (easy
# patterns), later ones at high IPC (DATM's difficulty alignment). A shorter expert run is capped, not scaled:
# the early phase a small set should match does not get shorter with the run. Scaled to the 8-epoch experts
# of bench.distill's CPU scale, these ranges collapsed (IPC 1 to epoch 0 alone) and every DATM-style and PAD
# cell lost 0.1 to 6.2 points against the earlier T+ of 4 (bench/results/distill-cpu.md, "before" rows);
# capped, DATM-style measured 68.34 / 75.01 / 75.01 on Fashion-MNIST IPC 1 / 10 / 50 and 94.26 on MNIST IPC 10
# against 63.20 / 73.93 / 74.43 and 93.70 scaled (3 seeds each, bench.distill's cpu scale).
START_RANGE_BY_IPC: tuple[tuple[int | None, tuple[int, int, int]], ...] = (
    (1, (0, 4, 4)), (10, (0, 10, 20)), (50, (0, 20, 40)), (None, (40, 60, 60)),
)


def by_ipc(table: tuple[tuple[int | None, T], ...], ipc: int) -> T:
    """The entry of an IPC table that holds ``ipc``."""
    return next(value for bound, value in table if bound is None or ipc <= bound)


# Registration order is the order the API and the CLI list the methods in (the papers' order).
METHODS: Registry[MethodSpec] = Registry("distillation method")


def register_method(spec: MethodSpec) -> MethodSpec:
    FAMILIES.get(spec.family)  # an unknown family is refused here, naming the registered ones
    return METHODS.register(spec)


def get_method(name: str) -> MethodSpec:
    return METHODS.get(name)


def method_names() -> list[str]:
    return METHODS.names()


register_method(MethodSpec(
    "dc", "Dataset Condensation (gradient matching)",
    "Zhao, Mopuri, Bilen. Dataset Condensation with Gradient Matching. ICLR 2021", "gradient", dsa=False,
    coreset_start_up_to_ipc=10,
))
register_method(MethodSpec(
    "dsa", "Differentiable Siamese Augmentation (gradient matching)",
    "Zhao, Bilen. Dataset Condensation with Differentiable Siamese Augmentation. ICML 2021", "gradient",
    coreset_start_up_to_ipc=10,
))
register_method(MethodSpec(
    "dm", "Distribution Matching",
    "Zhao, Bilen. Dataset Condensation with Distribution Matching. WACV 2023", "distribution",
    coreset_start_up_to_ipc=10,
))
register_method(MethodSpec(
    "mtt", "Matching Training Trajectories",
    "Cazenavette, Wang, Torralba, Efros, Zhu. Dataset Distillation by Matching Training Trajectories. CVPR 2022",
    "trajectory",
))
register_method(MethodSpec(
    "datm", "Difficulty-aligned trajectory matching (soft labels, widening start range)",
    "Guo, Wang, Chen, Lin, You. Towards Lossless Dataset Distillation via Difficulty-Aligned Trajectory Matching. ICLR 2024",
    "trajectory", soft_labels=True, soft_labels_up_to_ipc=10, widen_start_range=True, zca=True,
    coreset_start_up_to_ipc=10, coreset_start_from_ipc=2,
))
register_method(MethodSpec(
    "pad", "Prioritize Alignment in Dataset Distillation (FIEX scheduler + FIEM)",
    "Li, Wang, Zhou, Zhao, Shao, You. Prioritize Alignment in Dataset Distillation. 2024",
    "trajectory", soft_labels=True, soft_labels_up_to_ipc=10, widen_start_range=True, difficulty_schedule=True,
    fiem=True, zca=True,
))


def methods_using(group: str) -> list[str]:
    """The registered methods whose family has option group ``group`` (``experts``: mtt, datm, pad)."""
    families = families_using(group)
    return [m.name for m in METHODS if m.family in families]


def families_table() -> str:
    """The registered families as the README's Markdown table: what each matches, its methods and its options
    (``group.option``, as a job spec nests them; the CLI spells them ``--group-option``)."""
    rows = ["| family | methods | what it matches | options |", "| --- | --- | --- | --- |"]
    for family in FAMILIES:
        methods = ", ".join(f"`{m.name}`" for m in METHODS if m.family == family.name)
        options = ", ".join(f"`{group.name}.{o.name}`" for group in family.options for o in offered(group.config_type()))
        rows.append(f"| `{family.name}` | {methods} | {family.description} | {options} |")
    return "\n".join(rows)
