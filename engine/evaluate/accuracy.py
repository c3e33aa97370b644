"""Train fresh models from scratch on a subset and measure test accuracy over several seeds."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from engine.data.dataset import ImageDataset
from engine.evaluate.batched import train_and_test_seeds
from engine.evaluate.spec import EvalSpec
from engine.device import resolve_device
from engine.distill.augment import DSAugment
from engine.models import create_model
from engine.progress import Tracker
from engine.seed import seed_everything
from engine.train import TrainConfig, predict, train_model


@dataclass
class AccuracyStats:
    mean: float
    std: float
    per_seed: list[float]
    # Indexed by class; None for a class with no test samples, whose accuracy is undefined (a NaN would make
    # the report invalid JSON, which PostgreSQL refuses to store).
    per_class: list[float | None]
    train_size: int
    seconds: float
    model: str
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "mean": self.mean,
            "std": self.std,
            "per_seed": self.per_seed,
            "per_class": self.per_class,
            "classes_without_test_samples": [c for c, acc in enumerate(self.per_class) if acc is None],
            "train_size": self.train_size,
            "seconds": self.seconds,
            "model": self.model,
            **self.extra,
        }


def mean_per_class(per_run: Sequence[Sequence[float | None] | np.ndarray]) -> list[float | None]:
    """Each class's test accuracy averaged over runs (seeds or draws) on the same test split; None for a
    class with no test samples (NaN, or None, in every run)."""
    means = np.array(per_run, dtype=np.float64).mean(axis=0)
    return [float(m) if np.isfinite(m) else None for m in means]


TensorTransform = Callable[[torch.Tensor], torch.Tensor]
# How evaluate_training_set orders a subset before training on it; part of a stored baseline's key, so that
# figures measured under another order (before issue 34.3, the order the indices came in) are not reused.
TRAINING_ORDER = "sorted indices"


def test_accuracy(
    model: torch.nn.Module, dataset: ImageDataset, device: torch.device, test_transform: TensorTransform | None = None
) -> tuple[float, np.ndarray]:
    """Accuracy on the test split; ``test_transform`` maps test images into the training space (e.g. ZCA)."""
    x, y = dataset.test_tensors()
    if test_transform is not None:
        x = test_transform(x)
    logits, _ = predict(model, x, device)
    pred = logits.argmax(1).cpu().numpy()
    truth = y.numpy()
    per_class = np.array(
        [float((pred[truth == c] == c).mean()) if (truth == c).any() else float("nan") for c in range(dataset.num_classes)]
    )
    return float((pred == truth).mean()), per_class


def train_and_test(
    dataset: ImageDataset,
    x: torch.Tensor,
    y: torch.Tensor,
    spec: EvalSpec,
    *,
    seed: int,
    sample_weights: torch.Tensor | None = None,
    tracker: Tracker | None = None,
    stage: str = "evaluate",
    test_transform: TensorTransform | None = None,
) -> tuple[float, np.ndarray]:
    """One fresh model trained on (x, y) (hard labels or probabilities) and scored on the dataset's test split."""
    c, h, _ = dataset.image_shape
    seed_everything(seed)
    model = create_model(spec.model, channels=c, num_classes=dataset.num_classes, image_size=h, width=spec.width, depth=spec.depth)
    # Tiny subsets would otherwise get one or two steps per epoch; keep the batch below the subset size.
    batch = max(1, min(spec.batch_size, len(x)))
    config = TrainConfig(
        epochs=spec.epochs, batch_size=batch, lr=spec.lr, augment=spec.augment, seed=seed, device=spec.device
    )
    augment_fn = DSAugment(spec.dsa_strategy) if spec.dsa_strategy else None
    train_model(model, x, y, config, sample_weights=sample_weights, tracker=tracker, stage=stage, augment_fn=augment_fn)
    return test_accuracy(model, dataset, resolve_device(spec.device), test_transform)


def evaluate_training_set(
    dataset: ImageDataset,
    indices: np.ndarray | None,
    spec: EvalSpec,
    *,
    base_seed: int = 0,
    sample_weights: np.ndarray | None = None,
    tracker: Tracker | None = None,
    stage: str = "evaluate",
) -> AccuracyStats:
    """Accuracy mean and std over ``spec.seeds`` fresh models trained on ``indices`` (None = all data), with
    ``sample_weights`` one per index (or per training sample without indices).

    The accuracy is the set's, not its order's: the training loop's batches are a seeded permutation of
    positions, so the same set listed in another order would train on other batches. The indices are
    therefore sorted (``TRAINING_ORDER``), their weights with them; a repeated index is ordered by its weight.
    """
    x_all, y_all = dataset.train_tensors()
    weights = None if sample_weights is None else np.asarray(sample_weights, dtype=np.float32)
    if indices is not None:
        idx = np.asarray(indices, dtype=np.int64)
        if weights is not None and weights.shape != idx.shape:
            raise ValueError(f"sample_weights has {len(weights)} entries for {len(idx)} indices: give one weight per index")
        order = np.lexsort((idx,) if weights is None else (weights, idx))
        idx = torch.from_numpy(idx[order])
        x_all, y_all = x_all[idx], y_all[idx]
        weights = None if weights is None else weights[order]
    return evaluate_tensors(dataset, x_all, y_all, spec, base_seed=base_seed,
                            sample_weights=None if weights is None else torch.from_numpy(weights), tracker=tracker, stage=stage)


def evaluate_tensors(
    dataset: ImageDataset,
    x: torch.Tensor,
    y: torch.Tensor,
    spec: EvalSpec,
    *,
    base_seed: int = 0,
    sample_weights: torch.Tensor | None = None,
    tracker: Tracker | None = None,
    stage: str = "evaluate",
    test_transform: TensorTransform | None = None,
) -> AccuracyStats:
    """Accuracy mean and std over ``spec.seeds`` fresh models trained on given tensors (e.g. a synthetic set)."""
    start = time.perf_counter()
    tracker = tracker or Tracker()
    seeds = [base_seed + s for s in range(spec.seeds)]
    together = (
        train_and_test_seeds(dataset, x, y, spec, seeds, sample_weights, tracker, stage, test_transform)
        if spec.batched
        else None
    )
    if together is not None:
        accs, per_class = [a for a, _ in together], [pc for _, pc in together]
    else:
        accs, per_class = [], []
        for s, seed in enumerate(seeds):
            acc, pc = train_and_test(
                dataset, x, y, spec, seed=seed, sample_weights=sample_weights,
                tracker=tracker.span(s / spec.seeds, (s + 1) / spec.seeds), stage=stage, test_transform=test_transform,
            )
            accs.append(acc)
            per_class.append(pc)
    return AccuracyStats(
        mean=float(np.mean(accs)),
        std=float(np.std(accs)),
        per_seed=[float(a) for a in accs],
        per_class=mean_per_class(per_class),
        train_size=len(x),
        seconds=time.perf_counter() - start,
        model=spec.model,
    )


def random_subset_like(labels: np.ndarray, indices: np.ndarray, num_classes: int, seed: int) -> np.ndarray:
    """A random subset with exactly the same size and per-class counts as ``indices``."""
    rng = np.random.default_rng(seed)
    counts = np.bincount(labels[indices], minlength=num_classes)
    parts = [rng.choice(np.flatnonzero(labels == c), size=int(k), replace=False) for c, k in enumerate(counts) if k]
    return np.concatenate(parts).astype(np.int64) if parts else np.empty(0, dtype=np.int64)
