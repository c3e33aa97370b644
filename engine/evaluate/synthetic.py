"""Evaluate a distilled set the way the literature does: fresh models trained from scratch on it."""

from __future__ import annotations

from dataclasses import replace

from engine.data.dataset import ImageDataset
from engine.distill.synthetic import SyntheticSet
from engine.evaluate.accuracy import AccuracyStats, evaluate_tensors
from engine.evaluate.spec import EvalSpec
from engine.progress import Tracker


def evaluate_synthetic(
    dataset: ImageDataset,
    synthetic: SyntheticSet,
    spec: EvalSpec,
    *,
    base_seed: int = 0,
    tracker: Tracker | None = None,
    stage: str = "evaluate_synthetic",
) -> AccuracyStats:
    """Accuracy mean and std over ``spec.seeds`` models trained on ``synthetic``.

    The learned learning rate replaces ``spec.lr`` when the set has one, soft labels are trained
    against with soft cross-entropy, and a ZCA-whitened set is tested on whitened test images.
    """
    if synthetic.lr is not None:
        spec = replace(spec, lr=float(synthetic.lr.detach()))
    stats = evaluate_tensors(
        dataset,
        synthetic.images.detach().cpu(),
        synthetic.targets().detach().cpu(),
        spec,
        base_seed=base_seed,
        tracker=tracker,
        stage=stage,
        test_transform=synthetic.zca.apply if synthetic.zca is not None else None,
    )
    stats.extra["lr"] = spec.lr
    return stats
