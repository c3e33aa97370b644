"""The prune job: score every sample, select the subset, prove its worth by training on it."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.atomic import write_atomic
from engine.data.dataset import ImageDataset
from engine.device import resolve_device
from engine.evaluate import EvalSpec, evaluate_training_set, gain_over_random, random_subset_like
from engine.evaluate.baselines import BaselineStore, baseline_key
from engine.pipeline.prune_config import EvalConfig, PruneConfig
from engine.pipeline.proxy_runs import ProxyRunInfo, scores_from_store
from engine.pipeline.prune_exports import write_exports
from engine.pipeline.report import environment
from engine.pipeline.scoring import compute_scores
from engine.progress import Tracker
from engine.scores import get_score
from engine.select import (
    class_distribution_kl,
    coreset_weights,
    importance_of,
    per_class_counts,
    rank_by_importance,
    select_indices,
)
from engine.select.auto import resolve_auto, score_of
from engine.select.policies import ccs_dropped
from engine.store import FileStore


@dataclass
class PruneResult:
    scores: np.ndarray
    ranking: np.ndarray
    indices: np.ndarray
    weights: np.ndarray | None
    report: dict

    def write(self, out_dir: Path, dataset: ImageDataset, origin: str | os.PathLike[str] | None = None) -> list[Path]:
        """Write scores.npy, ranking.npy (most important first), indices.npy, report.json (+ weights.npy), and
        the exports of ``engine.pipeline.prune_exports`` (kept.csv, scores.csv, indices.json, coreset.npz,
        subset.zip, samples.json, preview.png) from ``dataset``, the one the job ran on, read from the upload ``origin``."""
        out_dir.mkdir(parents=True, exist_ok=True)
        arrays = {"scores.npy": self.scores, "ranking.npy": self.ranking, "indices.npy": self.indices}
        if self.weights is not None:
            arrays["weights.npy"] = self.weights
        written = []
        for name, arr in arrays.items():
            written.append(write_atomic(out_dir / name, lambda f, a=arr: np.save(f, a, allow_pickle=False)))
        written.append(
            write_atomic(out_dir / "report.json", lambda f: f.write(json.dumps(self.report, indent=2).encode()))
        )
        return written + write_exports(out_dir, dataset, self.scores, self.ranking, self.indices, self.weights, origin)


def _eval_spec(cfg: EvalConfig, model: str | None, device: str) -> EvalSpec:
    return EvalSpec(
        model=model or cfg.model,
        width=cfg.width if (model or cfg.model).startswith("convnet") else None,
        depth=cfg.depth,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        seeds=cfg.seeds,
        device=device,
    )


def _evaluate(
    dataset: ImageDataset,
    indices: np.ndarray,
    weights: np.ndarray | None,
    config: PruneConfig,
    tracker: Tracker,
    baselines: BaselineStore | None = None,
) -> dict:
    cfg = config.evaluation
    assert cfg is not None
    n, k = len(dataset.y_train), len(indices)
    # Spans proportional to the samples each stage trains on, so the progress bar moves evenly.
    random_idx = random_subset_like(dataset.y_train, indices, dataset.num_classes, config.seed)
    plan: list[tuple[str, str | None, np.ndarray | None, int]] = [("subset", None, indices, k)]
    if cfg.compare_random:
        plan.append(("random", None, random_idx, k))
    if cfg.full_data:
        plan.append(("full", None, None, n))
    for arch in cfg.archs:
        plan.append((f"subset@{arch}", arch, indices, k))
        if cfg.compare_random:
            plan.append((f"random@{arch}", arch, random_idx, k))
    counts = np.bincount(dataset.y_train[indices], minlength=dataset.num_classes)
    total = sum(size for *_, size in plan)
    out: dict = {}
    done = 0
    for label, arch, idx, size in plan:
        span = tracker.span(done / total, (done + size) / total)
        name, _, arch_name = label.partition("@")
        spec = _eval_spec(cfg, arch, config.device)
        # The random subset and the full data do not depend on the score or policy: reusable baselines.
        key = (
            baseline_key(dataset.evaluation_fingerprint, name, spec, counts if name == "random" else None, config.seed)
            if baselines is not None and name != "subset"
            else None
        )
        if key is not None and (stored := baselines.get(key)) is not None:
            stats = {**stored, "reused": True}
            span.report(f"evaluate_{name}", 1.0, f"reused the {name} baseline")
        else:
            stats = evaluate_training_set(
                dataset,
                idx,
                spec,
                base_seed=config.seed + 1000,
                sample_weights=weights if name == "subset" else None,
                tracker=span,
                stage=f"evaluate_{name}",
            ).to_dict()
            if key is not None:
                baselines.put(key, stats)
        (out.setdefault("cross_arch", {}).setdefault(arch_name, {}) if arch_name else out)[name] = stats
        done += size
    return out


def _gains(evaluation: dict) -> dict | None:
    """The subset's gain over random, for the evaluation model and for each extra architecture."""
    if "random" not in evaluation:
        return None
    gain = gain_over_random(evaluation["subset"], evaluation["random"])
    by_arch = {arch: gain_over_random(runs["subset"], runs["random"]) for arch, runs in evaluation.get("cross_arch", {}).items()}
    return {**gain, "cross_arch": by_arch} if by_arch else gain


@dataclass
class SubsetEvaluation:
    """What fresh models trained on one subset measured: the report's ``evaluation`` and ``gain_over_random``."""

    evaluation: dict
    gain_over_random: dict | None
    seconds: float

    def add_to(self, report: dict) -> None:
        report["evaluation"] = self.evaluation
        if self.gain_over_random is not None:
            report["gain_over_random"] = self.gain_over_random
        report["timings"]["evaluation_seconds"] = self.seconds


def run_prune(
    dataset: ImageDataset,
    config: PruneConfig,
    tracker: Tracker | None = None,
    workdir: Path | None = None,
    proxy_runs: FileStore | None = None,
    baselines: BaselineStore | None = None,
) -> PruneResult:
    """Score, select and (optionally) evaluate.

    Args:
        dataset: validated dataset.
        config: the full job configuration; recorded in the report.
        tracker: progress and cancellation (raises ``CancelledError`` between steps).
        workdir: checkpoint folder; a re-run with the same folder resumes the proxy training.
        proxy_runs: where recorded proxy runs are kept; with one, the job records every dynamics score
            and reuses a stored run of the same data and proxy instead of training
            (``engine.pipeline.proxy_runs``).
        baselines: where random-subset and full-data accuracies are kept; with one, a baseline already
            measured under the same data, protocol, per-class counts and seed is taken from it
            (``engine.evaluate.baselines``).
    """
    tracker = tracker or Tracker()
    scoring_share = 0.5 if config.evaluation is not None else 0.95
    result = select_subset(dataset, config, tracker.span(0.0, scoring_share), workdir, proxy_runs)
    if config.evaluation is not None:
        evaluate_subset(dataset, result, config, tracker.span(scoring_share, 1.0), baselines).add_to(result.report)
    tracker.report("done", 1.0, "prune finished")
    return result


def select_subset(
    dataset: ImageDataset,
    config: PruneConfig,
    tracker: Tracker | None = None,
    workdir: Path | None = None,
    proxy_runs: FileStore | None = None,
) -> PruneResult:
    """The prune job up to its evaluation: scores, the selected indices, and a report without ``evaluation``
    (``run_prune``'s arguments of the same names)."""
    tracker = tracker or Tracker()
    spec = get_score(score_of(config.method))
    device = resolve_device(config.device)
    report = {"kind": config.kind, "config": config.to_dict(), "seed": config.seed, "dataset": dataset.summary()}
    report.update(environment(device))
    policy = resolve_auto(config.selection, dataset.y_train, dataset.num_classes, spec.selects_globally, config.method)

    proxy_run: ProxyRunInfo | None = None
    if proxy_runs is not None:
        scoring, proxy_run = scores_from_store(
            proxy_runs, dataset, spec.name, config.proxy, method_params=config.score_params, seed=config.seed,
            device=config.device, tracker=tracker, workdir=workdir,
        )
    else:
        scoring = compute_scores(
            dataset,
            [spec.name],
            config.proxy,
            params={spec.name: config.score_params},
            seed=config.seed,
            device=config.device,
            tracker=tracker,
            workdir=workdir,
            features=policy.needs_features,
        )
    scores = scoring.scores[spec.name].astype(np.float64)

    t0 = time.perf_counter()
    importance = importance_of(scores, spec.higher_is_important)
    ranking = rank_by_importance(importance)
    indices = select_indices(
        importance, dataset.y_train, dataset.num_classes, policy.selection, config.seed, scoring.features,
        policy.per_class,
    )
    weights = coreset_weights(importance, indices) if config.selection.weights else None
    selection_seconds = time.perf_counter() - t0
    tracker.report("selection", 1.0, f"kept {len(indices)} of {len(scores)} samples")

    report["score"] = {
        "name": spec.name,
        "title": spec.title,
        "reference": spec.reference,
        "higher_is_important": spec.higher_is_important,
        "params": spec.resolved_params(config.score_params, config.proxy.epochs),
        "requested": config.method,
        "used": policy.score_used,
    }
    report["selection"] = {
        "policy": policy.to_dict(config.selection.mode),
        "kept": int(len(indices)),
        "total": int(len(scores)),
        "fraction": len(indices) / len(scores),
        "per_class_counts": per_class_counts(dataset.y_train, indices, dataset.num_classes),
        "full_class_counts": dataset.class_counts("train"),
        "class_kl": class_distribution_kl(dataset.y_train, indices, dataset.num_classes),
        # What CCS really dropped as the hardest: the policy's ccs_hard_cutoff is a share of each class that a
        # class keeping most of itself cannot give up in full.
        "ccs_dropped": ccs_dropped(dataset.y_train, dataset.num_classes, policy.selection, policy.per_class),
    }
    report["timings"] = {"scoring_seconds": scoring.seconds, "selection_seconds": selection_seconds}
    report["proxy"] = {"history": scoring.proxy_history, "resumed_from_epoch": scoring.resumed_from_epoch}
    if proxy_run is not None:
        report["proxy_run"] = proxy_run.to_dict()
    return PruneResult(scores, ranking, indices, weights, report)


def evaluate_subset(
    dataset: ImageDataset,
    result: PruneResult,
    config: PruneConfig,
    tracker: Tracker | None = None,
    baselines: BaselineStore | None = None,
) -> SubsetEvaluation:
    """Fresh models trained on ``result``'s subset (and its weights) under ``config.evaluation``, against the
    random subset and full data that protocol names."""
    t0 = time.perf_counter()
    evaluation = _evaluate(dataset, result.indices, result.weights, config, tracker or Tracker(), baselines)
    return SubsetEvaluation(evaluation, _gains(evaluation), time.perf_counter() - t0)
