"""The sweep job: several scores x several keep fractions from one proxy run, as a table and a curve.

Users explore before they prune for good. Each point of a sweep selects what the prune job of that score and
keep selects (``select_subset``), against one shared proxy-run store (so only the first point trains the
proxy: every dynamics score is recorded in that one run). Every point selects first; then each distinct
subset is evaluated once (``evaluate_subset``) against one shared baseline store (so the random subset of a
given size and the full data are trained once, not once per score). Points that keep the same samples are
one subset: training on it again would only measure the evaluation's noise and show it as a difference
between scores, so they are one row naming every (score, keep) that chose it. Each row is reported against
random at the same size, with the verdict on that gain and its overlap with the most similar other subset
at the same keep; ``curve.png`` plots accuracy against the kept fraction.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.dataset import ImageDataset
from engine.device import resolve_device
from engine.evaluate.baselines import BaselineStore, MemoryBaselines
from engine.atomic import write_atomic
from engine.pipeline.prune import PruneResult, SubsetEvaluation, evaluate_subset, select_subset
from engine.pipeline.prune_config import PruneConfig
from engine.pipeline.sweep_config import SweepConfig, point_name, row_label
from engine.pipeline.report import environment
from engine.progress import Tracker
from engine.store import FileStore, LocalFileStore

@dataclass
class SweepResult:
    rows: list[dict[str, Any]]  # one per distinct subset, naming every point that kept it
    indices: dict[str, np.ndarray]  # "<method>@<keep>" -> kept indices, for every point
    report: dict[str, Any]

    def write(self, out_dir: Path) -> list[Path]:
        """sweep.json and sweep.csv (one row per distinct subset), selections.npz (each point's kept indices),
        curve.png (accuracy vs kept fraction, when evaluated), report.json."""
        out_dir.mkdir(parents=True, exist_ok=True)
        written = [
            write_atomic(out_dir / "sweep.json", lambda f: f.write(json.dumps(self.rows, indent=2).encode())),
            _write_csv(self.rows, out_dir / "sweep.csv"),
            write_atomic(out_dir / "selections.npz", lambda f: np.savez_compressed(f, **self.indices)),
            write_atomic(out_dir / "report.json", lambda f: f.write(json.dumps(self.report, indent=2).encode())),
        ]
        if any(r["accuracy"] is not None for r in self.rows):
            written.append(save_curve(self.rows, out_dir / "curve.png"))
        return written


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """|A & B| / |A | B| of two sets of distinct indices."""
    common = len(np.intersect1d(a, b, assume_unique=True))
    return common / (len(a) + len(b) - common)


def _training_set(result: PruneResult) -> tuple[bytes, bytes | None]:
    """What evaluation models train on: the kept samples as a set, and their weights when the policy gives
    some (the same samples under other weights are another training set)."""
    order = np.argsort(result.indices, kind="stable")
    weights = None if result.weights is None else result.weights[order].tobytes()
    return result.indices[order].tobytes(), weights


def _overlaps(points: list[PruneConfig], selections: list[PruneResult], keeps: list[float]) -> list[dict[str, Any]]:
    """The Jaccard overlap of every two points' kept sets, per keep."""
    out = []
    for keep in keeps:
        at_keep = [i for i, p in enumerate(points) if p.selection.keep == keep]
        out.append({
            "keep": keep,
            "points": [point_name(points[i].method, keep) for i in at_keep],
            "jaccard": [[jaccard(selections[i].indices, selections[j].indices) for j in at_keep] for i in at_keep],
        })
    return out


def _subset_name(members: list[PruneConfig]) -> str:
    """Every point that kept a subset: ``el2n@0.1, forgetting@0.1``."""
    return ", ".join(point_name(p.method, p.selection.keep) for p in members)


def _closest(subsets: list[list[PruneConfig]], kept: list[np.ndarray]) -> list[tuple[float, str] | None]:
    """For each subset, the Jaccard overlap with the other subset at one of its keeps that it overlaps most, and
    that subset's name; None when it is alone at its keeps."""
    keeps = [{p.selection.keep for p in members} for members in subsets]
    out: list[tuple[float, str] | None] = []
    for g in range(len(subsets)):
        overlaps = {h: jaccard(kept[g], kept[h]) for h in range(len(subsets)) if h != g and keeps[g] & keeps[h]}
        # max gives the first of equal overlaps: the earlier row.
        best = max(overlaps, key=overlaps.__getitem__, default=None)
        out.append(None if best is None else (overlaps[best], _subset_name(subsets[best])))
    return out


def _row(
    members: list[PruneConfig],
    selections: list[PruneResult],
    evaluated: SubsetEvaluation | None,
    closest: tuple[float, str] | None,
) -> dict[str, Any]:
    selection = selections[0].report["selection"]
    evaluation = evaluated.evaluation if evaluated is not None else {}
    gain = evaluated.gain_over_random if evaluated is not None else None
    verdict = gain["verdict"] if gain is not None else None

    def stat(name: str, key: str) -> float | None:
        return evaluation[name][key] if name in evaluation else None

    return {
        "point": _subset_name(members),
        "methods": [p.method for p in members],
        "keeps": [p.selection.keep for p in members],
        "policy": ", ".join(dict.fromkeys(s.report["selection"]["policy"]["mode"] for s in selections)),
        # False when a policy that ignores the score (prototypes) kept the set: no score is credited for it.
        "score_used": all(s.report["score"]["used"] for s in selections),
        "kept": selection["kept"],
        "fraction": selection["fraction"],
        "class_kl": selection["class_kl"],
        "accuracy": stat("subset", "mean"),
        "accuracy_std": stat("subset", "std"),
        "random": stat("random", "mean"),
        "random_std": stat("random", "std"),
        "gain_over_random": gain["mean"] if gain is not None else None,
        "gain_std": gain["std"] if gain is not None else None,
        "verdict": verdict["verdict"] if verdict is not None else None,
        "gain_low": verdict["low"] if verdict is not None else None,
        "gain_high": verdict["high"] if verdict is not None else None,
        "seeds": len(evaluation["subset"]["per_seed"]) if evaluation else None,
        "full_data": stat("full", "mean"),
        "overlap": closest[0] if closest is not None else None,
        "overlap_with": closest[1] if closest is not None else None,
    }


def _write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else [])
    writer.writeheader()
    # A cell holds one value: a row's lists (its scores, its keeps) are space-separated.
    writer.writerows({k: " ".join(map(str, v)) if isinstance(v, list) else v for k, v in row.items()} for row in rows)
    return write_atomic(path, lambda f: f.write(buffer.getvalue().encode()))


def save_curve(rows: list[dict[str, Any]], path: Path) -> Path:
    """Test accuracy vs kept fraction, one line per score and one for random subsets of the same sizes, each
    point with its per-seed std; a subset several points kept is marked with every score that kept it."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a worker
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for method in dict.fromkeys(m for r in rows for m in r["methods"]):
        points = sorted({(r["fraction"], r["accuracy"], r["accuracy_std"]) for r in rows if method in r["methods"]})
        x, y, err = (np.array(v, dtype=float) for v in zip(*points, strict=True))
        ax.errorbar(100 * x, 100 * y, yerr=100 * err, marker="o", capsize=3, label=method)
    randoms = sorted({(r["fraction"], r["random"], r["random_std"]) for r in rows if r["random"] is not None})
    if randoms:
        x, y, err = (np.array(v, dtype=float) for v in zip(*randoms, strict=True))
        ax.errorbar(100 * x, 100 * y, yerr=100 * err, marker="s", linestyle="--", color="grey", capsize=3, label="random")
    for r in rows:
        if len(r["methods"]) > 1:  # the lines meet here because it is one subset, evaluated once
            ax.annotate(f"same subset: {row_label(r)}", (100 * r["fraction"], 100 * r["accuracy"]),
                        textcoords="offset points", xytext=(6, -12), fontsize=7)
    seeds = max(r["seeds"] for r in rows if r["seeds"] is not None)
    ax.set_xlabel("kept (% of the training set)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(title=f"error bars: ± std over {seeds} seed{'s' if seeds > 1 else ''}", title_fontsize=8)
    fig.tight_layout()
    write_atomic(path, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)
    return path


def run_sweep(
    dataset: ImageDataset,
    config: SweepConfig,
    tracker: Tracker | None = None,
    workdir: Path | None = None,
    proxy_runs: FileStore | None = None,
    baselines: BaselineStore | None = None,
) -> SweepResult:
    """Every point of ``config`` selects, then each distinct subset is evaluated once; ``proxy_runs`` and
    ``baselines`` default to stores for this run only."""
    tracker = tracker or Tracker()
    points = config.points()
    if not points:
        raise ValueError("a sweep needs at least one method and one keep")
    baselines = baselines if baselines is not None else MemoryBaselines()
    selecting = tracker.span(0.0, 0.5 if config.base.evaluation is not None else 1.0)
    selections: list[PruneResult] = []
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        store = proxy_runs if proxy_runs is not None else LocalFileStore(Path(tmp))
        # The first point trains the proxy, the others read its recorded run: give the first most of the stage.
        first_share = 0.9 if len(points) > 1 else 1.0
        for i, point in enumerate(points):
            start = 0.0 if i == 0 else first_share + (1 - first_share) * (i - 1) / (len(points) - 1)
            end = first_share if i == 0 else first_share + (1 - first_share) * i / (len(points) - 1)
            selections.append(select_subset(dataset, point, selecting.span(start, end), workdir=workdir, proxy_runs=store))

    groups: dict[tuple[bytes, bytes | None], list[int]] = {}
    for i, result in enumerate(selections):
        groups.setdefault(_training_set(result), []).append(i)
    subsets = list(groups.values())  # in the order of each subset's first point
    closest = _closest([[points[i] for i in group] for group in subsets], [selections[g[0]].indices for g in subsets])
    evaluating = tracker.span(0.5, 1.0)
    rows: list[dict[str, Any]] = []
    evaluations: list[dict[str, Any]] = []
    for g, group in enumerate(subsets):
        lead = group[0]
        evaluated = None
        if config.base.evaluation is not None:
            evaluated = evaluate_subset(dataset, selections[lead], points[lead],
                                        evaluating.span(g / len(subsets), (g + 1) / len(subsets)), baselines)
        row = _row([points[i] for i in group], [selections[i] for i in group], evaluated, closest[g])
        rows.append(row)
        if evaluated is not None:
            evaluations.append({"point": row["point"], "evaluation": evaluated.evaluation,
                                "gain_over_random": evaluated.gain_over_random, "evaluation_seconds": evaluated.seconds})

    row_of = {i: g for g, group in enumerate(subsets) for i in group}
    details = [
        {"point": point_name(point.method, point.selection.keep), "row": row_of[i],
         **{key: result.report.get(key) for key in ("score", "selection", "proxy_run", "timings")}}
        for i, (point, result) in enumerate(zip(points, selections, strict=True))
    ]
    report = {"kind": config.kind, "config": config.to_dict(), "seed": config.base.seed, "dataset": dataset.summary(),
              **environment(resolve_device(config.base.device)), "rows": rows, "points": details,
              "evaluations": evaluations, "overlap": _overlaps(points, selections, config.keeps),
              "proxy_run": details[0]["proxy_run"]}
    indices = {d["point"]: result.indices for d, result in zip(details, selections, strict=True)}
    tracker.report("done", 1.0, f"sweep of {len(points)} points finished: {len(subsets)} distinct subsets")
    return SweepResult(rows, indices, report)
