"""Scores from one recorded proxy run (plus short extra runs where a score averages over seeds)."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.data.dataset import ImageDataset
from engine.device import resolve_device
from engine.models import create_model
from engine.pipeline.prune_config import ProxyConfig
from engine.progress import Tracker
from engine.scores import check_score_params, get_score, score_random
from engine.scores.base import ScoreAccumulator
from engine.seed import seed_everything
from engine.train import TrainConfig, train_model
from engine.train.dynamics import DynamicsRecorder

# Scores defined as an average over independently initialised runs (EL2N, GraNd: "averaged over seeds")
# have this parameter; it is the pipeline's, not the accumulator's.
_SEEDS = "seeds"
# The recorder's key for the proxy's final features (no score has this name).
_FEATURES = "proxy features"


@dataclass
class ScoringResult:
    scores: dict[str, np.ndarray]
    seconds: float
    proxy_history: list[dict[str, float]] = field(default_factory=list)
    resumed_from_epoch: int = 0
    # (N, D) penultimate-layer features of the trained proxy, when asked for (prototype selection).
    features: np.ndarray | None = None


class FinalFeatures(ScoreAccumulator):
    """Keeps the proxy's penultimate features from the evaluation pass after its last epoch."""

    state_names = ("value",)

    def __init__(self, num_samples: int, num_classes: int, epochs: int, device: torch.device):
        super().__init__(num_samples, num_classes, epochs, device)
        self.value = torch.zeros(num_samples, 0, device=device)

    @property
    def eval_epochs(self) -> frozenset[int]:
        return frozenset({self.epochs})

    def on_eval(self, epoch: int, logits: torch.Tensor, features: torch.Tensor, targets: torch.Tensor) -> None:
        self.value = features.float()

    def result(self) -> np.ndarray:
        return self.value.detach().cpu().numpy()


def _proxy_model(dataset: ImageDataset, proxy: ProxyConfig, seed: int) -> torch.nn.Module:
    seed_everything(seed)  # the initial weights are part of what a recorded seed must reproduce
    c, h, _ = dataset.image_shape
    return create_model(
        proxy.model, channels=c, num_classes=dataset.num_classes, image_size=h, width=proxy.width, depth=proxy.depth
    )


def _train_config(proxy: ProxyConfig, seed: int, device: str) -> TrainConfig:
    return TrainConfig(
        epochs=proxy.epochs,
        batch_size=proxy.batch_size,
        lr=proxy.lr,
        weight_decay=proxy.weight_decay,
        augment=proxy.augment,
        seed=seed,
        device=device,
    )


def _recorder(
    methods: list[str],
    dataset: ImageDataset,
    epochs: int,
    params: dict[str, dict[str, Any]],
    device: torch.device,
    features: bool = False,
) -> DynamicsRecorder:
    accumulators: dict[str, ScoreAccumulator] = {}
    for name in methods:
        spec = get_score(name)
        kwargs = {k: v for k, v in params.get(name, {}).items() if k != _SEEDS}
        accumulators[name] = spec.accumulator(len(dataset.y_train), dataset.num_classes, epochs, device, **kwargs)
    if features:
        accumulators[_FEATURES] = FinalFeatures(len(dataset.y_train), dataset.num_classes, epochs, device)
    _, y = dataset.train_tensors()
    return DynamicsRecorder(accumulators, y, dataset.num_classes)


def _checkpoint_path(
    workdir: Path | None,
    dataset: ImageDataset,
    methods: list[str],
    proxy: ProxyConfig,
    params: dict,
    seed: int,
    features: bool,
) -> Path | None:
    """A checkpoint name keyed by everything the run depends on, so only an identical run resumes it."""
    if workdir is None:
        return None
    key = json.dumps(
        [dataset.content_hash, sorted(methods), asdict(proxy), params, seed, features], sort_keys=True, default=str
    )
    return workdir / f"proxy-{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt"


def compute_scores(
    dataset: ImageDataset,
    methods: list[str],
    proxy: ProxyConfig,
    *,
    params: dict[str, dict[str, Any]] | None = None,
    seed: int = 0,
    device: str = "auto",
    tracker: Tracker | None = None,
    workdir: Path | None = None,
    features: bool = False,
) -> ScoringResult:
    """All requested scores, with every dynamics-based one recorded during a single proxy training run.

    Args:
        dataset: the training data to score.
        methods: registered score names.
        proxy: the proxy model and its (possibly shortened) schedule.
        params: per-score parameters, e.g. ``{"tdds": {"window": 5}, "el2n": {"seeds": 3}}``.
        seed: seed of the proxy run; extra EL2N/GraNd seeds use ``seed + 1, seed + 2, ...``.
        device: ``auto``, ``cpu`` or ``cuda``.
        tracker: progress and cancellation.
        workdir: checkpoint folder; a re-run with the same folder resumes the proxy run.
        features: also return the trained proxy's penultimate features (trains a proxy even when no
            requested score needs one).
    """
    start = time.perf_counter()
    params = params or {}
    tracker = tracker or Tracker()
    for name in methods:  # fail fast on an unknown name or parameters it cannot run with, before any training
        if problems := check_score_params(name, params.get(name, {}), proxy.epochs):
            raise ValueError("; ".join(f"{name} {p.field}: {p.message}" for p in problems))
    scores: dict[str, np.ndarray] = {}
    if "random" in methods:
        scores["random"] = score_random(len(dataset.y_train), seed)
    dynamic = [m for m in methods if get_score(m).implementation is not None]
    if not dynamic and not features:
        return ScoringResult(scores, time.perf_counter() - start)

    extra_seeds = {
        m: int(params.get(m, {}).get(_SEEDS, get_score(m).params[_SEEDS].default)) - 1
        for m in dynamic
        if _SEEDS in get_score(m).params
    }
    extra_runs = max(extra_seeds.values(), default=0)
    dev = resolve_device(device)
    x, y = dataset.train_tensors()
    main_share = 1.0 / (1 + 0.5 * extra_runs)
    recorder = _recorder(dynamic, dataset, proxy.epochs, params, dev, features)
    result = train_model(
        _proxy_model(dataset, proxy, seed),
        x,
        y,
        _train_config(proxy, seed, device),
        observers=[recorder],
        tracker=tracker.span(0.0, main_share),
        stage="proxy_training",
        checkpoint=_checkpoint_path(workdir, dataset, dynamic, proxy, params, seed, features),
    )
    recorded = recorder.results()
    proxy_features = recorded.pop(_FEATURES, None)
    scores.update(recorded)

    for run in range(1, extra_runs + 1):
        averaged = [m for m, extra in extra_seeds.items() if extra >= run]
        stop = max(get_score(m).resolved_params(params.get(m, {}), proxy.epochs)["epoch"] for m in averaged)
        rec = _recorder(averaged, dataset, proxy.epochs, params, dev)
        span = tracker.span(main_share + (run - 1) * (1 - main_share) / extra_runs, main_share + run * (1 - main_share) / extra_runs)
        train_model(
            _proxy_model(dataset, proxy, seed + run),
            x,
            y,
            _train_config(proxy, seed + run, device),
            observers=[rec],
            tracker=span,
            stage=f"proxy_seed_{run + 1}",
            stop_after=stop,
        )
        for name, values in rec.results().items():
            # Running mean over the runs that include this score.
            scores[name] = scores[name] + (values - scores[name]) / (run + 1)
    return ScoringResult(
        scores, time.perf_counter() - start, result.history, result.resumed_from_epoch, proxy_features
    )
