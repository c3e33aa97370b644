"""Distilled sets beat random real subsets of the same size, on digits and on an MNIST subset.

Margins asserted here were measured first over several distillation seeds on this 2-core CPU
(each line: distilled vs random real, mean over 3 evaluation seeds; see each test's docstring).
Random baselines draw a different real subset per evaluation seed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.data import load_dataset, subsample_per_class
from engine.data.dataset import ImageDataset
from engine.distill.distribution_config import DistributionConfig
from engine.distill.experts_config import ExpertConfig
from engine.distill.families import options_with
from engine.distill.trajectory_config import TrajectoryConfig
from engine.pipeline.distill import run_distill
from engine.pipeline.distill_config import DistillConfig, DistillEvalConfig, InitConfig
from tests.conftest import make_dataset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mnist_5k(shared_datasets: Path) -> ImageDataset:
    """The reference setting: the first 500 training images per class; the first 2000 test images."""
    full = load_dataset(shared_datasets / "mnist")
    keep = subsample_per_class(full.y_train, 500)
    return make_dataset(full.x_train[keep], full.y_train[keep], full.x_test[:2000], full.y_test[:2000], "mnist-5k")


def _margin(dataset: ImageDataset, config: DistillConfig) -> tuple[float, float, float]:
    ev = run_distill(dataset, config).report["evaluation"]
    return ev["synthetic"]["mean"] - ev["random"]["mean"], ev["synthetic"]["mean"], ev["random"]["mean"]


def _dm(ipc: int, iterations: int, lr: float, batch_real: int, eval_epochs: int, seed: int = 0) -> DistillConfig:
    return DistillConfig(
        method="dm", ipc=ipc, iterations=iterations, width=32, seed=seed, device="cpu",
        options=options_with(distribution=DistributionConfig(batch_real=batch_real, lr_images=lr)),
        # The margins below were measured from random real starts; init: auto's coreset start for DM is
        # tests/test_distill_coreset_row.py's, and would add a proxy run to each of these tests.
        init=InitConfig(mode="real"),
        evaluation=DistillEvalConfig(seeds=3, epochs=eval_epochs, width=32, full_data=False, compare_coreset=False),
    )


@pytest.mark.parametrize(
    "ipc, min_margin",
    [
        # Measured, seeds 0/1/2: 88.7 vs 73.3, 86.7 vs 72.8, 87.2 vs 69.9 (margins 15.4, 13.9, 17.4 points)
        (1, 0.10),
        # Measured, seeds 0/1/2: 94.3 vs 90.6, 93.9 vs 90.5, 92.8 vs 89.8 (margins 3.7, 3.4, 3.0 points)
        (10, 0.02),
    ],
)
def test_dm_beats_random_real_on_digits(digits: ImageDataset, ipc: int, min_margin: float) -> None:
    margin, distilled, random = _margin(digits, _dm(ipc, iterations=300, lr=20.0, batch_real=256, eval_epochs=300))
    assert margin >= min_margin, f"distilled {distilled:.3f} vs random {random:.3f}"


def test_dm_beats_random_real_on_mnist_subset(mnist_5k: ImageDataset) -> None:
    """IPC 10, the default budget. Measured, seeds 0/1/2: 92.3 vs 90.1 (one random draw), 92.1 vs 89.7, 92.2 vs
    89.3 (margins 2.2, 2.4, 2.9; evaluation std 0.2-0.3 points). IPC 1 on this subset (margins 21.7 to 31.2
    points) left the suite to keep CI under 30 minutes: its 200 DM iterations took over two minutes, and IPC 1 is
    asserted on digits above and measured on MNIST and Fashion-MNIST by bench.distill (distill-cpu.md)."""
    margin, distilled, random = _margin(mnist_5k, _dm(10, iterations=200, lr=5.0, batch_real=64, eval_epochs=150))
    assert margin >= 0.015, f"distilled {distilled:.3f} vs random {random:.3f}"


@pytest.mark.parametrize(
    "method, min_margin",
    [
        # Measured, seeds 0/1/2: 90.3 vs 62.3, 89.4 vs 61.0, 90.6 vs 65.1 (margins 27.9, 28.4, 25.5 points)
        ("dc", 0.15),
        # Measured, seeds 0/1/2: 91.4 vs 62.3, 89.9 vs 61.0, 90.4 vs 65.1 (margins 29.1, 28.9, 25.3 points)
        ("dsa", 0.15),
        # Measured, seeds 0/1/2: 87.2 vs 62.3, 86.1 vs 61.0, 85.4 vs 65.1 (margins 24.9, 25.1, 20.3 points)
        ("datm", 0.15),
        # Measured, seeds 0/1/2: 87.1 vs 62.3, 86.9 vs 61.0, 86.3 vs 65.1 (margins 24.8, 25.9, 21.2 points)
        ("pad", 0.15),
    ],
)
def test_each_method_beats_random_real_at_ipc_1_on_digits(method: str, min_margin: float) -> None:
    """50 iterations at IPC 1 (trajectory methods on 3 experts of 10 epochs, 10 student steps), on
    the built-in digits set with its stratified held-out test split (where the margins were measured)."""
    config = DistillConfig(
        method=method, ipc=1, iterations=50, width=32, device="cpu",
        options=options_with(experts=ExpertConfig(num_experts=3, epochs=10, batch_size=128),
                             trajectory=TrajectoryConfig(syn_steps=10, expert_epochs=2, max_start_epoch=4)),
        init=InitConfig(mode="real"),  # as the margins were measured (DC's default start is the coreset)
        evaluation=DistillEvalConfig(seeds=3, epochs=300, width=32, full_data=False, compare_coreset=False),
    )
    margin, distilled, random = _margin(load_dataset("builtin:digits"), config)
    assert margin >= min_margin, f"distilled {distilled:.3f} vs random {random:.3f}"


def test_prune_then_distill_with_trajectory_matching_beats_random_real_on_digits(digits: ImageDataset) -> None:
    """Prune-then-distill (EL2N, per-class 70-80th percentile window) + MTT at IPC 1.

    Measured, seeds 0/1/2: 87.2 vs 73.3, 86.7 vs 72.8, 85.6 vs 69.9 (margins 13.9, 13.9, 15.7 points)."""
    config = DistillConfig(
        method="mtt", ipc=1, iterations=100, width=32, device="cpu",
        options=options_with(experts=ExpertConfig(num_experts=3, epochs=10, batch_size=128),
                             trajectory=TrajectoryConfig(syn_steps=10, expert_epochs=2, max_start_epoch=4)),
        evaluation=DistillEvalConfig(seeds=3, epochs=300, width=32, full_data=False, compare_coreset=False),
    )
    config.init.mode = "pruned"
    config.init.selection.mode = "window"
    config.init.selection.window = (0.7, 0.8)
    config.init.proxy.width, config.init.proxy.epochs = 32, 5
    margin, distilled, random = _margin(digits, config)
    assert margin >= 0.10, f"distilled {distilled:.3f} vs random {random:.3f}"
