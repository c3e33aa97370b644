"""Recorded proxy runs as a reusable asset: score once, select many times.

One proxy run costs most of a prune job, and recording every dynamics score during it costs little
more than recording one (``bench/prune``: 1.12x a plain run for nine scores). So a run made for a store
records every dynamics score (the job's own with the job's parameters, the others with their
defaults) and the proxy's final features, and is kept under a key of everything it depends on: the
dataset's content, the proxy model and schedule, the seed and every recorded score's parameters. A
later job on the same data and proxy, whatever score, selection policy or keep it asks for, loads
the arrays instead of training. The file is safetensors (arrays and a JSON header, nothing pickled).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from engine.data.dataset import ImageDataset
from engine.pipeline.prune_config import ProxyConfig, PruneConfig
from engine.pipeline.scoring import ScoringResult, compute_scores
from engine.progress import Tracker
from engine.scores import check_score_params, get_score, score_names
from engine.select.auto import score_of
from engine.store import FileStore, StoredFileDamaged, reuse_or_compute

FORMAT = "condense-proxy-run-v1"
_FEATURES = "features"


def dynamics_scores() -> list[str]:
    """The scores a proxy run records (those with an accumulator)."""
    return [name for name in score_names() if get_score(name).implementation is not None]


def recorded_params(
    method: str, method_params: dict[str, Any], proxy_epochs: int
) -> dict[str, dict[str, Any]]:
    """The parameters of every score a stored run records: ``method``'s own, the defaults for the others.

    A score whose defaults cannot run on a proxy of ``proxy_epochs`` epochs (a window longer than the
    run) is left out rather than failing the job that did not ask for it.
    """
    recorded = {}
    for name in dynamics_scores():
        params = method_params if name == method else {}
        if name == method or not check_score_params(name, params, proxy_epochs):
            recorded[name] = get_score(name).resolved_params(params, proxy_epochs)
    return recorded


def proxy_run_key(dataset: ImageDataset, proxy: ProxyConfig, seed: int, params: dict[str, dict[str, Any]]) -> str:
    """The store key: every input the recorded arrays depend on, hashed (the exact training tensors too:
    a subset or another split of a dataset keeps its content hash)."""
    payload = {"dataset": dataset.content_hash, "data": dataset.train_fingerprint, "proxy": asdict(proxy), "seed": seed,
               "params": params}
    return "proxy-" + hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:32]


def proxy_run_summary(config: PruneConfig) -> dict[str, Any]:
    """The inputs of the run a prune job with ``config`` records, as a listing of stored runs shows them."""
    return {
        "proxy": asdict(config.proxy),
        "seed": config.seed,
        "scores": recorded_params(score_of(config.method), config.score_params, config.proxy.epochs),
    }


@dataclass
class ProxyRunInfo:
    """What a job reports about the proxy run it used."""

    key: str
    reused: bool
    scores: list[str]
    trained_seconds: float  # the proxy run's own cost, when it was trained (also when reused: what was saved)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _save(path: Path, scoring: ScoringResult, params: dict[str, dict[str, Any]]) -> None:
    tensors = {f"score.{name}": torch.from_numpy(np.ascontiguousarray(values)) for name, values in scoring.scores.items()}
    if scoring.features is not None:
        tensors[_FEATURES] = torch.from_numpy(np.ascontiguousarray(scoring.features))
    metadata = {
        "format": FORMAT,
        "params": json.dumps(params, sort_keys=True, default=str),
        "history": json.dumps(scoring.proxy_history),
        "seconds": repr(scoring.seconds),
    }
    save_file(tensors, str(path), metadata=metadata)


def _load(path: Path, key: str, num_samples: int, scores: list[str]) -> ScoringResult:
    """The stored run, checked against what this job needs of it: its format, and one value per training
    sample for every recorded score (and feature row). A file that fails is damaged, not a run to trust."""
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        tensors = load_file(str(path))
        if metadata.get("format") != FORMAT:
            raise ValueError(f"format {metadata.get('format')!r}")
        loaded = {k.removeprefix("score."): v.numpy() for k, v in tensors.items() if k.startswith("score.")}
        features = tensors[_FEATURES].numpy() if _FEATURES in tensors else None
        result = ScoringResult(loaded, float(metadata["seconds"]), json.loads(metadata["history"]), 0, features)
    except (SafetensorError, ValueError, KeyError) as exc:
        raise StoredFileDamaged(f"the stored proxy run {key} cannot be read ({exc})") from exc
    wrong = [f"{name}: {None if name not in loaded else loaded[name].shape}" for name in scores
             if name not in loaded or loaded[name].shape != (num_samples,)]
    if features is not None and (features.ndim != 2 or len(features) != num_samples):
        wrong.append(f"features: {features.shape}")
    if wrong:
        raise StoredFileDamaged(
            f"the stored proxy run {key} does not hold one value per training sample ({num_samples}): {', '.join(wrong)}"
        )
    return result


def scores_from_store(
    store: FileStore,
    dataset: ImageDataset,
    method: str,
    proxy: ProxyConfig,
    *,
    method_params: dict[str, Any],
    seed: int,
    device: str = "auto",
    tracker: Tracker | None = None,
    workdir: Path | None = None,
) -> tuple[ScoringResult, ProxyRunInfo]:
    """``method``'s scores (and the proxy's features) from the stored run for this data and proxy,
    recording and storing that run first when there is none.

    The returned result holds ``method``'s scores only; ``seconds`` is what this call took (loading, or
    training), while ``ProxyRunInfo.trained_seconds`` is the run's own training time.
    """
    tracker = tracker or Tracker()
    start = time.perf_counter()
    params = recorded_params(method, method_params, proxy.epochs)
    key = proxy_run_key(dataset, proxy, seed, params)

    def train(local: Path) -> ScoringResult:
        # The seeds parameter (EL2N's, GraNd's) is the pipeline's; it goes as the caller gave it.
        run_params = {name: method_params if name == method else {} for name in params}
        scoring = compute_scores(
            dataset, list(params), proxy, params=run_params, seed=seed, device=device, tracker=tracker,
            workdir=workdir, features=True,
        )
        _save(local, scoring, params)
        return scoring

    def load(local: Path) -> ScoringResult:
        scoring = _load(local, key, len(dataset.y_train), list(params))
        tracker.report("proxy_training", 1.0, "reused a stored proxy run")
        return scoring

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        scoring, reused = reuse_or_compute(
            store, key, Path(tmp) / "proxy-run.safetensors", load, train, tracker, "proxy_training"
        )
    info = ProxyRunInfo(key=key, reused=reused, scores=sorted(params), trained_seconds=scoring.seconds)
    if method in scoring.scores:
        own = scoring.scores[method]
    else:  # a score that needs no training (random) comes with the run's features, not from it
        own = compute_scores(dataset, [method], proxy, params={method: method_params}, seed=seed).scores[method]
    result = ScoringResult(
        {method: own}, time.perf_counter() - start, scoring.proxy_history,
        scoring.resumed_from_epoch, scoring.features,
    )
    return result, info
