"""Prune benchmark: every score x keep fraction x class balance on MNIST and Fashion-MNIST, beside
the default job's policy (``mode: auto``).

    python -m bench.prune                 # reduced CPU scale (documented below); the tables took 21 min on 2 cores with --balance balanced
    python -m bench.prune --scale full    # the literature's scale, for GPU machines

One proxy run per dataset records every dynamics-based score at once, each with its default
parameters (plus the short extra runs EL2N averages over); each selection is then
evaluated by training fresh models (several seeds) on it. The benchmark also measures the cost of
recording dynamics (recording vs not, same loop, same run, as a ratio) and the TDDS state size
against dataset size.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
import torch

from bench.common import RESULTS, command_line, find_shared_datasets, mean_std, write_results
from engine.allocator import keep_freed_memory
from engine.data import ImageDataset, load_dataset, subsample_per_class
from engine.evaluate import EvalSpec, evaluate_training_set
from engine.models import create_model
from engine.pipeline.prune_config import ProxyConfig, PruneConfig
from engine.pipeline.scoring import ScoringResult, compute_scores
from engine.scores import get_score, score_random
from engine.scores.accumulators.tdds import TDDSAccumulator
from engine.seed import seed_everything
from engine.select import importance_of, select_indices
from engine.select.config import SelectionConfig
from engine.select.budget import resolve_count
from engine.evaluate.verdict import describe, paired_verdict
from engine.select.auto import named_policy, resolve_auto, score_of
from engine.train import TrainConfig, train_model
from engine.train.dynamics import DynamicsRecorder

DYNAMIC = ["el2n", "forgetting", "aum", "entropy", "dyn_unc", "tdds", "moderate", "grand", "eva"]
# "default (auto)" is what a job with only ``keep`` set selects: the default score and ``mode: auto``.
DEFAULT = "default (auto)"
TABLE_METHODS = [DEFAULT, "random", "el2n", "forgetting", "aum", "entropy", "dyn_unc", "tdds", "moderate", "ccs"]
CCS_BASE = "aum"  # CCS stratifies a difficulty score; its paper uses AUM


@dataclass
class Scale:
    per_class: int | None
    width: int
    proxy_epochs: int
    eval_images: int
    eval_min_epochs: int
    eval_max_epochs: int
    full_data_epochs: int


SCALES = {
    # 500 per class (5k train), ConvNet width 16, 10 proxy epochs, tested on the full 10k test set. Each
    # evaluation model trains as many epochs as the full-data reference (20) and, on small subsets, more:
    # up to 8k images seen (8000 / subset size epochs, capped at 200). The floor matters: under the
    # 8k-image budget alone a 30% subset trained 5 epochs and random subsets scored lower at 30% and 50%
    # than at 10% (77.36 / 76.93 vs 77.65 on Fashion-MNIST), so compute, not the data kept, set the result.
    "cpu": Scale(per_class=500, width=16, proxy_epochs=10, eval_images=8000, eval_min_epochs=20, eval_max_epochs=200,
                 full_data_epochs=20),
    # Full 60k, ConvNet width 128, 30 proxy epochs, evaluation ~ 60 full-data epochs of images.
    "full": Scale(per_class=None, width=128, proxy_epochs=30, eval_images=3_600_000, eval_min_epochs=60,
                  eval_max_epochs=1000, full_data_epochs=60),
}


def subset(dataset: ImageDataset, per_class: int | None) -> ImageDataset:
    if per_class is None:
        return dataset
    return dataset.with_train_subset(subsample_per_class(dataset.y_train, per_class))


def eval_spec(scale: Scale, size: int, seeds: int) -> EvalSpec:
    epochs = max(scale.eval_min_epochs, min(scale.eval_max_epochs, round(scale.eval_images / size)))
    return EvalSpec(model="convnet", width=scale.width, epochs=epochs, batch_size=min(128, size), seeds=seeds)


def selection_for(method: str, keep: float, balanced: bool) -> tuple[str, SelectionConfig]:
    if method == DEFAULT:
        return score_of(PruneConfig.method), SelectionConfig(keep=keep, class_balanced=balanced)
    if method == "ccs":
        return CCS_BASE, SelectionConfig(keep=keep, mode="ccs", class_balanced=balanced)
    return method, SelectionConfig(keep=keep, mode="hardest", class_balanced=balanced)


def random_draws(data: ImageDataset, selection: SelectionConfig, spec: EvalSpec, seeds: int) -> list[float]:
    """Random selection's accuracy per evaluation seed, each seed on a subset of its own: seed s draws subset s
    and trains the model every other row trains as its seed s. One shared draw left the luck of that draw in
    every comparison (at Fashion-MNIST 5%, one draw scored 77.01 where three scored 75.64 on average)."""
    accuracy = []
    for s in range(seeds):
        idx = select_indices(score_random(len(data.y_train), s), data.y_train, data.num_classes, selection, seed=s)
        accuracy += evaluate_training_set(data, idx, replace(spec, seeds=1), base_seed=100 + s).per_seed
    return accuracy


def recording_overhead(dataset: ImageDataset, scale: Scale, width: int, repeats: int, samples: int = 5000) -> dict:
    """Cost of one proxy run recording every dynamics score / the same run recording nothing.

    Same loop, same data, same epochs; the two kinds alternate after a warm-up run. The headline
    ratio is of process CPU time on one thread: the work each run does, which other processes on
    this shared machine cannot inflate (wall time with several threads can wait a whole scheduler
    slice per kernel when the cores are busy). Wall-clock seconds are recorded beside it.
    """
    data = dataset.with_train_subset(np.arange(min(samples, len(dataset.y_train))))
    x, y = data.train_tensors()
    config = TrainConfig(epochs=scale.proxy_epochs, seed=0)
    c, h, _ = data.image_shape

    def one_run(record: bool) -> tuple[float, float]:
        seed_everything(0)
        model = create_model("convnet", channels=c, num_classes=data.num_classes, image_size=h, width=width)
        observers = []
        if record:
            accs = {
                m: get_score(m).accumulator(len(y), data.num_classes, config.epochs, torch.device("cpu"), **params)
                for m, params in ((m, {"epoch": scale.proxy_epochs // 2} if m in ("el2n", "grand") else {}) for m in DYNAMIC)
            }
            observers = [DynamicsRecorder(accs, y, data.num_classes)]
        cpu, wall = time.process_time(), time.perf_counter()
        train_model(model, x, y, config, observers=observers)
        return time.process_time() - cpu, time.perf_counter() - wall

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one_run(False)
        runs: dict[str, list[tuple[float, float]]] = {"recording": [], "plain": []}
        for _ in range(repeats):
            runs["plain"].append(one_run(False))
            runs["recording"].append(one_run(True))
    finally:
        torch.set_num_threads(threads)
    cpu = {kind: [r[0] for r in rs] for kind, rs in runs.items()}
    wall = {kind: [r[1] for r in rs] for kind, rs in runs.items()}
    return {
        "ratio": float(np.median(cpu["recording"]) / np.median(cpu["plain"])),
        "wall_ratio": float(np.median(wall["recording"]) / np.median(wall["plain"])),
        "cpu_seconds": cpu, "wall_seconds": wall, "threads": 1,
        "scores_recorded": DYNAMIC, "epochs": config.epochs, "samples": len(y), "width": width,
    }


def reference_scoring_time(dataset: ImageDataset, epochs: int = 5, width: int = 128) -> dict:
    """Wall time of one recorded proxy run giving every score, at the setting the issue quotes
    DeepCore's single-score timings for (ConvNet width 128, 5 epochs, the first 500 MNIST images per class)."""
    first = np.concatenate([np.flatnonzero(dataset.y_train == c)[:500] for c in range(dataset.num_classes)])
    data = dataset.with_train_subset(np.sort(first))
    proxy = ProxyConfig(model="convnet", width=width, epochs=epochs)
    cpu, start = time.process_time(), time.perf_counter()
    compute_scores(data, ["random", *DYNAMIC], proxy, params={"el2n": {"epoch": epochs}, "grand": {"epoch": epochs}}, seed=0)
    return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu, "load_average": os.getloadavg(),
            "samples": int(len(first)), "epochs": epochs, "width": width, "scores": DYNAMIC, "threads": torch.get_num_threads()}


def tdds_state_bytes(num_classes: int, sizes: list[int], window: int = 10) -> list[dict]:
    """Bytes held by TDDS's streaming state (previous probabilities, contribution ring, score) per dataset size."""
    rows = []
    for n in sizes:
        acc = TDDSAccumulator(n, num_classes, epochs=30, device=torch.device("cpu"), window=window)
        state = sum(t.numel() * t.element_size() for t in acc.state_dict().values())
        history = n * 30 * num_classes * 4  # what storing every epoch's outputs would take (float32)
        rows.append({"samples": n, "state_bytes": state, "full_history_bytes": history})
    return rows


def score_all(dataset: ImageDataset, scale: Scale) -> tuple[ImageDataset, ScoringResult]:
    """The scale's subset of ``dataset`` and one proxy run's scores of it, every score with its defaults, as a job
    that names only the score gets it (EL2N: the early epoch averaged over its default seeds, 001 Alg. 1), so each
    row measures what a user receives; with the proxy's features for prototypes."""
    data = subset(dataset, scale.per_class)
    proxy = ProxyConfig(model="convnet", width=scale.width, epochs=scale.proxy_epochs)
    return data, compute_scores(data, ["random", *DYNAMIC], proxy, seed=0, features=True)


def paired_gain(data: ImageDataset, idx: np.ndarray, spec: EvalSpec, random: list[float]) -> tuple[list[float], dict]:
    """Accuracy per evaluation seed of training on ``idx`` and its gain over ``random`` (paired by seed), with a
    verdict."""
    accuracy = evaluate_training_set(data, idx, spec, base_seed=100).per_seed
    return accuracy, paired_verdict(np.asarray(accuracy) - np.asarray(random)).to_dict()


def run_dataset(
    name: str, dataset: ImageDataset, scale: Scale, keeps: list[float], balances: list[bool], seeds: int, log
) -> dict:
    t0 = time.perf_counter()
    data, scoring = score_all(dataset, scale)
    scoring_seconds = time.perf_counter() - t0
    log(f"{name}: scored {len(data.y_train)} samples with {len(DYNAMIC)} dynamics scores in one run, {scoring_seconds:.1f}s")

    full_spec = EvalSpec(model="convnet", width=scale.width, epochs=scale.full_data_epochs, batch_size=128, seeds=seeds)
    full = evaluate_training_set(data, None, full_spec, base_seed=100)
    log(f"{name}: full data {mean_std(full.per_seed)}")
    rows = []
    for keep in keeps:
        for balanced in balances:
            for method in TABLE_METHODS:
                score_name, requested = selection_for(method, keep, balanced)
                # auto ignores class_balanced (it always balances): its "global" cell is the same subset.
                resolved = resolve_auto(requested, data.y_train, data.num_classes)
                selection = resolved.selection
                imp = importance_of(scoring.scores[score_name], get_score(score_name).higher_is_important)
                idx = select_indices(imp, data.y_train, data.num_classes, selection, seed=0, features=scoring.features,
                                     per_class=resolved.per_class)
                spec = eval_spec(scale, len(idx), seeds)
                if method == "random":
                    accuracy = random_draws(data, selection, spec, seeds)
                else:
                    accuracy = evaluate_training_set(data, idx, spec, base_seed=100).per_seed
                rows.append({
                    "dataset": name, "method": method, "keep": keep, "class_balanced": balanced, "mode": selection.mode,
                    "kept": int(len(idx)), "accuracy": accuracy, "mean": float(np.mean(accuracy)),
                    "std": float(np.std(accuracy)), "eval_epochs": spec.epochs,
                })
                log(f"{name} keep={keep} {'balanced' if balanced else 'global'} {method}: {mean_std(accuracy)}")
    return {
        "dataset": name,
        "train_samples": int(len(data.y_train)),
        "scoring_seconds_one_run_all_scores": scoring_seconds,
        "full_data": {"accuracy": full.per_seed, "mean": full.mean, "std": full.std, "epochs": scale.full_data_epochs},
        "rows": rows,
    }


HONESTY_KEEPS = (0.01, 0.05, 0.1, 0.3)
PROTOTYPES = "prototypes (auto)"


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    sa, sb = set(a.tolist()), set(b.tolist())
    return len(sa & sb) / len(sa | sb)


def honesty(name: str, dataset: ImageDataset, scale: Scale, keeps: list[float], seeds: int, log) -> dict:
    """Issue 34's check that a named score decides: for each score a job can name (with ``mode: auto``, as a
    user gets it) and for the prototypes ``method: auto`` keeps, at each keep, the kept set's Jaccard overlap
    with every other one and its gain over random (seed s: random draw s, model seed s, paired) with a verdict."""
    data, scoring = score_all(dataset, scale)
    labels, classes = data.y_train, data.num_classes
    out = []
    for keep in keeps:
        kept: dict[str, np.ndarray] = {}
        policies: dict[str, dict] = {}
        for method in [PROTOTYPES, *DYNAMIC]:
            named = "auto" if method == PROTOTYPES else method
            resolved = resolve_auto(SelectionConfig(keep=keep), labels, classes,
                                    get_score(score_of(named)).selects_globally, named)
            score = resolved.score
            imp = importance_of(scoring.scores[score], get_score(score).higher_is_important)
            kept[method] = select_indices(imp, labels, classes, resolved.selection, seed=0, features=scoring.features,
                                          per_class=resolved.per_class)
            policies[method] = resolved.to_dict("auto")
        size = len(kept[PROTOTYPES])
        spec = eval_spec(scale, size, seeds)
        random = random_draws(data, SelectionConfig(keep=keep, mode="hardest", class_balanced=True), spec, seeds)
        rows = []
        for method, idx in kept.items():
            accuracy, gain = paired_gain(data, idx, spec, random)
            overlaps = {other: jaccard(idx, kept[other]) for other in kept if other != method}
            rows.append({"method": method, "policy": policies[method]["mode"],
                         "score_used": policies[method]["score_used"], "kept": int(len(idx)), "accuracy": accuracy,
                         "gain": gain, "overlap": overlaps})
            log(f"{name} keep={keep} {method}: gain {describe(gain)}; "
                f"max overlap {max(overlaps.values()):.2f}")
        out.append({"keep": keep, "random": random, "eval_epochs": spec.epochs, "rows": rows})
    return {"dataset": name, "train_samples": int(len(labels)), "keeps": out}


def honesty_markdown(results: list[dict]) -> list[str]:
    lines = ["", "## Honesty: does the named score decide? (`--parts honesty`)", "",
             "Each score named with `mode: auto` (what a user gets) and the prototypes `method: auto` keeps; overlap is "
             "the Jaccard of the kept sets; the gain over random is paired by seed with its 95% t-interval verdict.", ""]
    for result in results:
        for block in result["keeps"]:
            lines += [f"### {result['dataset']}, keep {block['keep']:.0%} (random {mean_std(block['random'])})", "",
                      "| score | policy | score used | gain over random (points) | verdict | highest overlap |",
                      "|---|---|---|---|---|---|"]
            for row in block["rows"]:
                other, value = max(row["overlap"].items(), key=lambda item: item[1])
                lines.append(f"| {row['method']} | {row['policy']} | {'yes' if row['score_used'] else 'no'} | "
                             f"{100 * row['gain']['mean']:+.2f} | {row['gain']['verdict']} | {value:.2f} ({other}) |")
            lines.append("")
    return lines


# Policies a named score could resolve to, per keep (issue 34 point 1; labels of engine.select.auto.named_policy):
# the CCS the named scores resolved to before, and the alternatives the literature suggests at that budget
# (Sorscher et al. 2022: easy/typical samples when data are scarce, hard ones when plenty; Moderate-DS: around
# the median; the hardest tail dropped as likely noise).
POLICY_CANDIDATES: dict[float, tuple[str, ...]] = {
    0.05: ("ccs 30%", "easiest", "median"),
    0.1: ("ccs 30%", "median", "drop 30%"),
    0.3: ("ccs 10%", "drop 10%", "hardest"),
}


def best_policies(results: list[dict]) -> dict[str, tuple[tuple[float, str], ...]]:
    """For each score, per measured keep, the candidate whose worse gain over random across the datasets is the
    highest (a policy must hold on both): what ``engine.select.auto.MEASURED_BEST`` records."""
    gains: dict[tuple[str, float, str], list[float]] = {}
    for result in results:
        for block in result["keeps"]:
            for row in block["rows"]:
                gains.setdefault((row["score"], block["keep"], row["policy"]), []).append(row["gain"]["mean"])
    datasets = len(results)
    best: dict[str, dict[float, tuple[float, str]]] = {}
    for (score, keep, policy), values in gains.items():
        if len(values) == datasets:
            current = best.setdefault(score, {}).get(keep)
            if current is None or min(values) > current[0]:
                best[score][keep] = (min(values), policy)
    return {score: tuple((keep, policy) for keep, (_, policy) in sorted(per_keep.items()))
            for score, per_keep in best.items()}


def policies(name: str, dataset: ImageDataset, scale: Scale, seeds: int, log) -> dict:
    """For each score a job can name, each candidate policy at each keep of ``POLICY_CANDIDATES``: its gain over
    random (paired by seed) with a verdict, so the policy ``mode: auto`` resolves to for that score is a measured
    one."""
    data, scoring = score_all(dataset, scale)
    labels, classes = data.y_train, data.num_classes
    out = []
    for keep, candidates in POLICY_CANDIDATES.items():
        spec = eval_spec(scale, resolve_count(keep, len(labels)), seeds)
        random = random_draws(data, SelectionConfig(keep=keep, mode="hardest", class_balanced=True), spec, seeds)
        rows = []
        for score in DYNAMIC:
            imp = importance_of(scoring.scores[score], get_score(score).higher_is_important)
            for policy in candidates:
                selection = named_policy(policy, SelectionConfig(keep=keep), keep)
                idx = select_indices(imp, labels, classes, selection, seed=0)
                accuracy, gain = paired_gain(data, idx, spec, random)
                rows.append({"score": score, "policy": policy, "accuracy": accuracy, "gain": gain})
                log(f"{name} keep={keep} {score} {policy}: {mean_std(accuracy)}, gain {describe(gain)}")
        out.append({"keep": keep, "random": random, "eval_epochs": spec.epochs, "rows": rows})
    return {"dataset": name, "train_samples": int(len(labels)), "keeps": out}


def policies_markdown(results: list[dict]) -> list[str]:
    lines = ["", "## Which policy a named score should resolve to (`--parts policies`)", "",
             "Each score's candidate policies within each class; the gain over random is paired by seed (seed s: random "
             "draw s and model seed s) with its 95% t-interval verdict.", ""]
    for result in results:
        for block in result["keeps"]:
            lines += [f"### {result['dataset']}, keep {block['keep']:.0%} (random {mean_std(block['random'])}, "
                      f"{block['eval_epochs']} epochs)", "", "| score | policy | accuracy | gain (points) | verdict |",
                      "|---|---|---|---|---|"]
            lines += [f"| {row['score']} | {row['policy']} | {mean_std(row['accuracy'])} | "
                      f"{100 * row['gain']['mean']:+.2f} | {row['gain']['verdict']} |" for row in block["rows"]]
            lines.append("")
    if len(results) > 1:
        lines += ["### The policy each named score resolves to (`engine.select.auto.MEASURED_BEST`)", "",
                  "Per score and keep, the candidate whose worse gain over random across the datasets is highest.", "",
                  "| score | " + " | ".join(f"keep <= {keep:.0%}" for keep in POLICY_CANDIDATES) + " |",
                  "|---|" + "---|" * len(POLICY_CANDIDATES)]
        for score, steps in best_policies(results).items():
            lines.append(f"| {score} | " + " | ".join(policy for _, policy in steps) + " |")
        lines.append("")
    return lines


def tables_markdown(tables: dict, title: str) -> list[str]:
    keeps, balances = tables["keeps"], tables.get("balances", [True, False])
    lines = [f"### {title}\n", f"Command: `{tables['command']}`\n\nTest accuracy (%) mean ± std over {tables['seeds']} seeds; "
             "each cell trains fresh ConvNets on the kept subset.\n"]
    for res in tables["results"]:
        lines.append(f"#### {res['dataset']} ({res['train_samples']} training samples; full data {mean_std(res['full_data']['accuracy'])} "
                     f"at {res['full_data']['epochs']} epochs; "
                     f"one proxy run for all scores: {res['scoring_seconds_one_run_all_scores']:.1f}s)\n")
        columns = [(k, b) for k in keeps for b in balances]
        header = "| method | " + " | ".join(f"keep {k:.0%} {'balanced' if b else 'global'}" for k, b in columns) + " |"
        lines += [header, "|" + "---|" * (1 + len(columns))]
        cell = {(r["method"], r["keep"], r["class_balanced"]): r for r in res["rows"]}
        for method in TABLE_METHODS:
            if not any(key[0] == method for key in cell):
                continue
            cells = [mean_std(cell[method, k, b]["accuracy"]) if (method, k, b) in cell else "—" for k, b in columns]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        if any(key[0] == DEFAULT for key in cell):
            lines += ["", "Default job vs random (balanced; the same evaluation seeds, so paired): gain in points, "
                      "mean ± std over seeds, and the policy auto chose.\n", "| keep | policy | gain over random |", "|---|---|---|"]
            for k in keeps:
                d, r = cell.get((DEFAULT, k, True)), cell.get(("random", k, True))
                if d and r:
                    gain = 100 * (np.asarray(d["accuracy"]) - np.asarray(r["accuracy"]))
                    lines.append(f"| {k:.0%} | {d.get('mode', '?')} | {gain.mean():+.2f} ± {gain.std():.2f} |")
        lines.append("")
    return lines


def markdown(payload: dict, scale: Scale) -> str:
    lines = [f"## Prune benchmark ({payload['scale']} scale)\n", f"Scale: {scale}\n"]
    if "tables" in payload:
        lines += tables_markdown(payload["tables"], "Every score and the default job's policy")
    for earlier in payload.get("tables_earlier", []):
        lines += tables_markdown(earlier, f"{earlier['title']}, kept for comparison")
    if "overhead" in payload:
        runs = payload["overhead"]["runs"]
        lines += ["### Cost of recording dynamics\n", f"Command: `{payload['overhead']['command']}`\n",
                  f"One training run recording {len(runs[0]['scores_recorded'])} scores ({', '.join(runs[0]['scores_recorded'])}) vs the same "
                  "loop recording nothing; medians of interleaved repeats in one process on one thread. The ratio is of process CPU "
                  "time (the work done, which other processes on this shared machine cannot inflate); the wall-clock ratio is beside it.\n",
                  "| proxy | samples | epochs | repeats | recording CPU s | plain CPU s | **CPU ratio** | wall ratio |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in runs:
            lines.append(f"| ConvNet w{r['width']} | {r['samples']} | {r['epochs']} | {len(r['cpu_seconds']['plain'])} | "
                         f"{np.median(r['cpu_seconds']['recording']):.2f} | {np.median(r['cpu_seconds']['plain']):.2f} | "
                         f"**{r['ratio']:.3f}** | {r['wall_ratio']:.3f} |")
        lines.append("")
    if payload.get("reference") is not None:
        ref = payload["reference"]
        lines.append(f"### One recorded run vs one score per run\n\nCommand: `{ref['command']}`\n\nEvery score ({len(ref['scores'])} dynamics scores) "
                     f"from one recorded ConvNet-{ref['width']} run of {ref['epochs']} epochs on {ref['samples']} MNIST images (first 500 per class): "
                     f"**{ref['seconds']:.1f} s** wall ({ref['cpu_seconds']:.1f} s CPU on {ref['threads']} threads; "
                     f"1-minute load average {ref['load_average'][0]:.2f} on {os.cpu_count()} cores, where above the core count other "
                     "processes were slowing it). For comparison the issue quotes, on this kind of machine and data, DeepCore's "
                     "forgetting selection at about 114 s and its entropy selection at about 132 s, each giving one score (not re-measured here).\n")
    if "tdds" in payload:
        lines += ["### TDDS streaming state vs dataset size (10 classes, window 10, 30 epochs)\n",
                  "The state TDDS keeps between epochs (the peak beyond one epoch's (N, C) logits buffer, which every score shares), "
                  "vs what storing every epoch's outputs takes, as the official training script does.\n",
                  "| samples | TDDS state (MiB) | storing every epoch's outputs (MiB) |", "|---|---|---|"]
        lines += [f"| {r['samples']} | {r['state_bytes'] / 2**20:.2f} | {r['full_history_bytes'] / 2**20:.2f} |" for r in payload["tdds"]["rows"]]
    if "honesty" in payload:
        lines += [f"Command: `{payload['honesty']['command']}`", *honesty_markdown(payload["honesty"]["results"])]
    if "policies" in payload:
        lines += [f"Command: `{payload['policies']['command']}`", *policies_markdown(payload["policies"]["results"])]
    return "\n".join(lines) + "\n"


def protocol(scale: Scale) -> dict:
    """What the tables' figures depend on: the scale and how the random rows draw their subsets."""
    return scale.__dict__ | {"random_subsets": "one per evaluation seed"}


def earlier_tables(tables: dict, settings: dict) -> dict:
    """Tables measured under other settings, titled by the settings that differ."""
    changed = ", ".join(f"{k} {v}" for k, v in tables["scale"].items() if settings.get(k) != v)
    return tables | {"title": f"Under earlier settings ({changed})"}


PARTS = ("tables", "overhead", "reference", "tdds", "honesty", "policies")
# Results of earlier code or protocols kept beside the new ones (not re-run by any part), latest first.
KEPT = ("tables_earlier",)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="cpu")
    parser.add_argument("--datasets", default="mnist,fashion-mnist")
    parser.add_argument("--keeps", default="0.01,0.05,0.1,0.3,0.5")
    parser.add_argument("--balance", choices=["both", "balanced"], default="both",
                        help="evaluate class-balanced and global selection, or class-balanced only")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--overhead-repeats", type=int, default=5)
    parser.add_argument("--overhead-widths", default=None, help="proxy widths timed for the recording overhead (default: the scale's and 64)")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help="which parts to run; the others are kept from the previous results file of this scale")
    args = parser.parse_args()
    keep_freed_memory()  # as the worker does
    scale = SCALES[args.scale]
    parts = args.parts.split(",")
    if unknown := set(parts) - set(PARTS):
        parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    keeps = [float(k) for k in args.keeps.split(",")]
    widths = [int(w) for w in args.overhead_widths.split(",")] if args.overhead_widths else sorted({scale.width, 64})
    root = find_shared_datasets()
    started = time.perf_counter()
    command = command_line("bench.prune")

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f}s] {msg}", flush=True)

    name = f"prune-{args.scale}"
    previous = RESULTS / f"{name}.json"
    payload = json.loads(previous.read_text()) if previous.is_file() and set(parts) != set(PARTS) else {}
    payload = {k: v for k, v in payload.items() if k in PARTS + KEPT}
    payload |= {"scale": args.scale, "scale_settings": scale.__dict__}
    if "overhead" in parts:
        mnist = subset(load_dataset(root / "mnist"), scale.per_class)
        runs = []
        for width in widths:
            runs.append(recording_overhead(mnist, scale, width, args.overhead_repeats))
            log(f"recording overhead ratio at width {width}: {runs[-1]['ratio']:.3f}")
        payload["overhead"] = {"command": command, "runs": runs}
    if "tables" in parts:
        balances = [True, False] if args.balance == "both" else [True]
        results = [run_dataset(ds, load_dataset(root / ds), scale, keeps, balances, args.seeds, log)
                   for ds in args.datasets.split(",")]
        settings = protocol(scale)
        if "tables" in payload and payload["tables"]["scale"] != settings:
            payload["tables_earlier"] = [earlier_tables(payload["tables"], settings), *payload.get("tables_earlier", [])]
        payload["tables"] = {"command": command, "keeps": keeps, "balances": balances, "seeds": args.seeds,
                             "scale": settings, "results": results}
    if "reference" in parts:
        payload["reference"] = {"command": command, **reference_scoring_time(load_dataset(root / "mnist"))}
        log(f"reference scoring run: {payload['reference']['seconds']:.1f}s")
    for part, measure in (("honesty", partial(honesty, keeps=list(HONESTY_KEEPS))), ("policies", policies)):
        if part in parts:
            results = []
            for ds in args.datasets.split(","):
                results.append(measure(ds, load_dataset(root / ds), scale, seeds=args.seeds, log=log))
                # written after each dataset, so a run stopped part-way keeps what it measured
                payload[part] = {"command": command, "seeds": args.seeds, "scale": protocol(scale), "results": results}
                write_results("bench.prune", name, payload, markdown(payload, scale))
    if "tdds" in parts:
        payload["tdds"] = {"command": command, "rows": tdds_state_bytes(10, [1_000, 10_000, 60_000, 1_281_167])}
    paths = write_results("bench.prune", name, payload, markdown(payload, scale))
    log(f"wrote {paths[0]} and {paths[1]}")


if __name__ == "__main__":
    main()
