"""The sweep job: several scores x several keep fractions from one proxy run, as a table and a curve.

Users explore before they prune for good. Each point of a sweep is the prune job of that score and keep
(``run_prune``), run against one shared proxy-run store (so only the first point trains the proxy:
every dynamics score is recorded in that one run) and one shared baseline store (so the random subset
of a given size and the full data are trained once, not once per score). Each point is reported against
random at the same size; ``curve.png`` plots accuracy against the kept fraction.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from engine.data.dataset import ImageDataset
from engine.device import resolve_device
from engine.evaluate.baselines import BaselineStore, MemoryBaselines
from engine.pipeline.prune import PruneResult, run_prune, write_atomic
from engine.pipeline.prune_config import PruneConfig
from engine.pipeline.report import environment
from engine.progress import Tracker
from engine.store import FileStore, LocalFileStore

SweepKind = Literal["prune_sweep"]
MAX_POINTS = 100  # methods x keeps: a sweep is exploration, not a grid search over thousands of cells


@dataclass
class SweepConfig:
    """Every (method, keep) pair of ``methods`` x ``keeps``; everything else (selection policy, proxy,
    evaluation, seed) is ``base``'s, whose own method and keep are replaced per point."""

    methods: list[str] = field(default_factory=lambda: [PruneConfig.method])
    keeps: list[float] = field(default_factory=lambda: [0.1, 0.3, 0.5])
    base: PruneConfig = field(default_factory=PruneConfig)

    @property
    def kind(self) -> SweepKind:
        return "prune_sweep"

    def points(self) -> list[PruneConfig]:
        return [
            replace(self.base, method=m, selection=replace(self.base.selection, keep=k))
            for m in self.methods
            for k in self.keeps
        ]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SweepResult:
    rows: list[dict[str, Any]]
    indices: dict[str, np.ndarray]  # "<method>@<keep>" -> kept indices
    report: dict[str, Any]

    def write(self, out_dir: Path) -> list[Path]:
        """sweep.json and sweep.csv (one row per point), selections.npz (each point's kept indices),
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


def point_name(method: str, keep: float) -> str:
    return f"{method}@{keep:g}"


def _row(point: PruneConfig, result: PruneResult) -> dict[str, Any]:
    report = result.report
    selection = report["selection"]
    evaluation = report.get("evaluation", {})
    gain = report.get("gain_over_random")

    def stat(name: str, key: str) -> float | None:
        return evaluation[name][key] if name in evaluation else None

    return {
        "point": point_name(point.method, point.selection.keep),
        "method": point.method,
        "keep": point.selection.keep,
        "policy": selection["policy"]["mode"],
        "kept": selection["kept"],
        "fraction": selection["fraction"],
        "class_kl": selection["class_kl"],
        "accuracy": stat("subset", "mean"),
        "accuracy_std": stat("subset", "std"),
        "random": stat("random", "mean"),
        "random_std": stat("random", "std"),
        "gain_over_random": gain["mean"] if gain else None,
        "gain_std": gain["std"] if gain else None,
        "full_data": stat("full", "mean"),
    }


def _write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else [])
    writer.writeheader()
    writer.writerows(rows)
    return write_atomic(path, lambda f: f.write(buffer.getvalue().encode()))


def save_curve(rows: list[dict[str, Any]], path: Path) -> Path:
    """Test accuracy vs kept fraction, one line per score and one for random subsets of the same sizes."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a worker
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for method in dict.fromkeys(r["method"] for r in rows):
        points = sorted((r["fraction"], r["accuracy"], r["accuracy_std"]) for r in rows if r["method"] == method)
        x, y, err = (np.array(v, dtype=float) for v in zip(*points, strict=True))
        ax.errorbar(100 * x, 100 * y, yerr=100 * err, marker="o", capsize=3, label=method)
    randoms = sorted({(r["fraction"], r["random"], r["random_std"]) for r in rows if r["random"] is not None})
    if randoms:
        x, y, err = (np.array(v, dtype=float) for v in zip(*randoms, strict=True))
        ax.errorbar(100 * x, 100 * y, yerr=100 * err, marker="s", linestyle="--", color="grey", capsize=3, label="random")
    ax.set_xlabel("kept (% of the training set)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend()
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
    """Every point of ``config``; ``proxy_runs`` and ``baselines`` default to stores for this run only."""
    tracker = tracker or Tracker()
    points = config.points()
    if not points:
        raise ValueError("a sweep needs at least one method and one keep")
    baselines = baselines if baselines is not None else MemoryBaselines()
    rows, indices, details = [], {}, []
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        store = proxy_runs if proxy_runs is not None else LocalFileStore(Path(tmp))
        # The first point trains the proxy: give it the share a proxy run takes of a job.
        first_share = 0.5 if len(points) > 1 else 1.0
        for i, point in enumerate(points):
            start = 0.0 if i == 0 else first_share + (1 - first_share) * (i - 1) / (len(points) - 1)
            end = first_share if i == 0 else first_share + (1 - first_share) * i / (len(points) - 1)
            result = run_prune(dataset, point, tracker.span(start, end), workdir=workdir, proxy_runs=store,
                               baselines=baselines)
            rows.append(_row(point, result))
            indices[point_name(point.method, point.selection.keep)] = result.indices
            details.append({key: result.report.get(key) for key in
                            ("score", "selection", "evaluation", "gain_over_random", "proxy_run", "timings")})
    report = {"kind": config.kind, "config": config.to_dict(), "seed": config.base.seed, "dataset": dataset.summary(),
              **environment(resolve_device(config.base.device)), "rows": rows, "points": details,
              "proxy_run": details[0]["proxy_run"]}
    tracker.report("done", 1.0, f"sweep of {len(points)} points finished")
    return SweepResult(rows, indices, report)
