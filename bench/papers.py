"""The seed papers' own experiments, repeated at CPU scale on MNIST and Fashion-MNIST.

    python -m bench.papers                                  # every part (CPU scale)
    python -m bench.papers --parts el2n_windows,class_balance

Parts (each prints the paper's own figures beside ours, labelled as quoted):
- ``el2n_windows``: 001 Sec. 4.4, Fig. 1. Ten subsets of 10% each, one per EL2N decile (taken within each
  class, as 001 picks its 70th-80th percentile window), beside a random class-balanced 10%.
- ``class_balance``: 001 Sec. 4.2, Tables 3 and 4. The hardest 10% by EL2N within each class vs over all
  samples, with the KL divergence of the kept class distribution from the full one.
- ``tdds_sweep``: 002 Sec. 5.3, Figs. 4 and 5. TDDS's window K, EMA decay beta and scored range at keep
  10% and 30%, selected over all samples as 002 does.
- ``pad_ablation``: 003 Sec. 4.3.1, Table 3b. PAD with and without FIEX (the expert data scheduler) and
  FIEM (shallow parameters left out of matching) at IPC 1 and 10: no module is DATM-style, FIEX alone
  PAD with alpha 0, FIEM alone DATM-style with PAD's alpha.
- ``fiex_dc_dm``: 003 App. A.1, Table 6. DC and DM matching all real images vs leaving out the share of each
  class's hardest (by EL2N) that Table 6 found best for the method at that IPC.

The pruning parts use ``bench.prune``'s CPU scale (500 images per class, ConvNet width 16, a 10-epoch
proxy, tested on the 10k test set) with the equal-compute evaluation they were measured under: every
subset's model sees about 8k images, with no floor of epochs (``bench.prune`` now trains at least 20, since
that budget under-trains subsets of 30% and more; these parts compare 10% subsets, which it leaves at 16
epochs, and TDDS at 30%). PAD's part shares ``bench.distill``'s scale.
Accuracy is mean ± std over the evaluation seeds; random cells draw one subset each, like ``bench.prune``'s.
"""

from __future__ import annotations

import argparse
import functools
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench import distill as distill_bench
from bench import prune as prune_bench
from bench.common import RESULTS, command_line, find_shared_datasets, markdown_header, mean_std, write_results
from engine.allocator import keep_freed_memory
from engine.data import ImageDataset, load_dataset
from engine.distill.registry import FIEM_BY_IPC, by_ipc
from engine.evaluate import evaluate_training_set
from engine.pipeline.prune_config import ProxyConfig
from engine.pipeline.scoring import compute_scores
from engine.scores import get_score
from engine.select import importance_of, select_indices
from engine.select.config import SelectionConfig

PARTS = ("el2n_windows", "class_balance", "tdds_sweep", "pad_ablation", "fiex_dc_dm")
DISTILL_PARTS = ("pad_ablation", "fiex_dc_dm")
PRUNE_SCALES = {
    "cpu": replace(prune_bench.SCALES["cpu"], eval_min_epochs=1),
    "smoke": prune_bench.Scale(per_class=20, width=8, proxy_epochs=6, eval_images=200, eval_min_epochs=1, eval_max_epochs=5,
                               full_data_epochs=1),
}
DECILES = 10
# 002 Fig. 4 sweeps the window over its longer runs; under our 10-epoch proxy K spans 3 (8 windows) to the
# whole run (1 window). Fig. 5 sweeps beta; a simple average is not an EMA setting, so it is left out.
# Each variant's parameters for a proxy run of the given epochs.
TDDS_VARIANTS: dict[str, Callable[[int], dict[str, Any]]] = {
    "default (K = half the range, beta 0.9)": lambda epochs: {},
    "K = 3": lambda epochs: {"window": 3},
    "K = the whole run (one window)": lambda epochs: {"window": epochs},
    "beta 0.5": lambda epochs: {"beta": 0.5},
    "beta 0.1": lambda epochs: {"beta": 0.1},
    "early range (first half of the run)": lambda epochs: {"end_epoch": max(3, epochs // 2)},
}
PAD_VARIANTS = {  # name: (method, FIEM on)
    "neither (DATM-style)": ("datm", False),
    "FIEX": ("pad", False),
    "FIEM": ("datm", True),
    "FIEX + FIEM (PAD)": ("pad", True),
}
# 003 Table 6 (CIFAR-10): the share of hard samples removed that did best, per method and IPC (quoted).
FIEX_TABLE6_BEST = {("dc", 1): 0.20, ("dc", 10): 0.25, ("dm", 1): 0.50, ("dm", 10): 0.20}
# FIEM's alpha where PAD's default is none (IPC 1): the smallest share PAD Table 10 uses.
FIEM_WHERE_DEFAULT_IS_NONE = 0.25
QUOTED = {
    "el2n_windows": "001 Fig. 1 (CIFAR-100, 10% subsets): the 70th-80th percentile window is best; the windows of the "
    "highest scores (label noise) and of the lowest (too little information) are worst. Its bar values are not printed in the text.",
    "class_balance": "001 Tables 3 and 4 (quoted, 10% compression): CIFAR-10 73.96 without class balance vs 73.73 with, "
    "KL 0.000856; CIFAR-100 36.2 vs 45.27, KL 0.008066; Tiny ImageNet 13.14 vs 26.8, KL 0.043840.",
    "tdds_sweep": "002 Sec. 5.3 (quoted): a larger pruning rate should score an earlier range (Fig. 4); EMA beats the simple "
    "average at every beta tried, and beta 0.9 is best (Fig. 5). The sweep's per-setting values are in its figures only.",
    "pad_ablation": "003 Table 3b (quoted, CIFAR-10 IPC 10): both FIEX and FIEM improve on neither, and the two together most.",
    "fiex_dc_dm": "003 Table 6 (quoted, CIFAR-10): DC 27.8 -> 29.1 at IPC 1 (20% hardest removed), 44.7 -> 46.3 at IPC 10 "
    "(25%); DM 26.4 -> 29.2 at IPC 1 (50%), 48.4 -> 50.3 at IPC 10 (20%).",
}


def _subset(dataset: ImageDataset, scale: prune_bench.Scale) -> ImageDataset:
    return prune_bench.subset(dataset, scale.per_class)


def _cell(data: ImageDataset, idx: np.ndarray, scale: prune_bench.Scale, seeds: int, **fields: Any) -> dict:
    stats = evaluate_training_set(data, idx, prune_bench.eval_spec(scale, len(idx), seeds), base_seed=100)
    counts = np.bincount(data.y_train[idx], minlength=data.num_classes)
    return {**fields, "kept": int(len(idx)), "accuracy": stats.per_seed, "mean": stats.mean, "std": stats.std,
            "class_kl": class_kl(counts, np.bincount(data.y_train, minlength=data.num_classes))}


def class_kl(kept: np.ndarray, full: np.ndarray) -> float:
    """KL(kept || full) of the class distributions (001 Table 4); finite even when a class lost every sample."""
    p, q = kept / kept.sum(), full / full.sum()
    nonzero = p > 0
    return float(np.sum(p[nonzero] * np.log(p[nonzero] / q[nonzero])))


def _select(data: ImageDataset, scores: np.ndarray, name: str, selection: SelectionConfig) -> np.ndarray:
    importance = importance_of(scores, get_score(name).higher_is_important)
    return select_indices(importance, data.y_train, data.num_classes, selection, seed=0)


def random_cells(data: ImageDataset, scores: dict[str, np.ndarray], scale, seeds: int) -> Callable[[float], dict]:
    """The random class-balanced cell of each keep, trained once and shared by every part."""

    @functools.cache
    def cell(keep: float) -> dict:
        idx = _select(data, scores["random"], "random", SelectionConfig(keep=keep, mode="hardest", class_balanced=True))
        return _cell(data, idx, scale, seeds, name="random", keep=keep)

    return cell


def _proxy(scale: prune_bench.Scale) -> ProxyConfig:
    return ProxyConfig(model="convnet", width=scale.width, epochs=scale.proxy_epochs)


def el2n_and_random(data: ImageDataset, scale: prune_bench.Scale) -> dict[str, np.ndarray]:
    """EL2N with its defaults (the early epoch averaged over seeds, 001 Alg. 1) and a random score."""
    return compute_scores(data, ["random", "el2n"], _proxy(scale), seed=0).scores


def el2n_windows(data: ImageDataset, scores: dict[str, np.ndarray], scale, seeds: int, random, log) -> list[dict]:
    rows = [random(0.1)]
    for decile in range(DECILES):
        # Decile 0 holds the highest EL2N scores (001 Fig. 1's left bin); quantiles are of the importance order.
        hi = 1.0 - decile / DECILES
        selection = SelectionConfig(keep=0.1, mode="window", window=(hi - 1 / DECILES, hi), class_balanced=True)
        rows.append(_cell(data, _select(data, scores["el2n"], "el2n", selection), scale, seeds,
                          name=percentile_label(decile), decile=decile, keep=0.1))
        log(f"  EL2N decile {decile}: {mean_std(rows[-1]['accuracy'])}")
    return rows


def percentile_label(decile: int) -> str:
    """001's name for a decile window: percentiles of the EL2N order counted from the lowest score, so its
    "70th-80th percentile" is the third decile from the top (decile 2 here, counting from the highest)."""
    lo = 100 - 10 * (decile + 1)
    return f"EL2N percentiles {lo}-{lo + 10}" + {0: " (highest)", DECILES - 1: " (lowest)"}.get(decile, "")


def class_balance(data: ImageDataset, scores: dict[str, np.ndarray], scale, seeds: int, random, log) -> list[dict]:
    rows = [random(0.1)]
    for balanced in (False, True):
        selection = SelectionConfig(keep=0.1, mode="hardest", class_balanced=balanced)
        rows.append(_cell(data, _select(data, scores["el2n"], "el2n", selection), scale, seeds,
                          name="EL2N hardest, " + ("class-balanced" if balanced else "over all samples"),
                          class_balanced=balanced, keep=0.1))
        log(f"  {rows[-1]['name']}: {mean_std(rows[-1]['accuracy'])}, class KL {rows[-1]['class_kl']:.6f}")
    return rows


def tdds_sweep(data: ImageDataset, scale, seeds: int, keeps: list[float], random, log) -> list[dict]:
    rows = [random(keep) for keep in keeps]
    for name, variant in TDDS_VARIANTS.items():
        params = variant(scale.proxy_epochs)
        # Same seed, so every variant scores the same proxy trajectory.
        tdds = compute_scores(data, ["tdds"], _proxy(scale), params={"tdds": params}, seed=0).scores["tdds"]
        for keep in keeps:
            selection = SelectionConfig(keep=keep, mode="hardest", class_balanced=False)  # 002 selects globally
            rows.append(_cell(data, _select(data, tdds, "tdds", selection), scale, seeds,
                              name=name, params=params, keep=keep))
            log(f"  TDDS {name} keep {keep:.0%}: {mean_std(rows[-1]['accuracy'])}")
    return rows


def pad_variants(ipc: int) -> list[tuple[str, str, dict[str, float]]]:
    alpha = by_ipc(FIEM_BY_IPC, ipc) or FIEM_WHERE_DEFAULT_IS_NONE
    return [(variant, method, {"fiem_ratio": alpha if fiem else 0.0}) for variant, (method, fiem) in PAD_VARIANTS.items()]


def fiex_variants(ipc: int) -> list[tuple[str, str, dict[str, float]]]:
    return [(f"{method.upper()}{' + FIEX' if fiex else ''}", method, {"fiex_ratio": FIEX_TABLE6_BEST[method, ipc] if fiex else 0.0})
            for method in ("dc", "dm") for fiex in (False, True)]


def distill_parts(parts: list[str], args: argparse.Namespace, root: Path, payload: dict, save, log) -> None:
    """Each variant of each part at every IPC, beside random real images of the same IPC (trained once
    per dataset for all the parts)."""
    scale = replace(distill_bench.SCALES[args.distill_scale], seeds=args.seeds)
    ipcs = [int(i) for i in args.ipcs.split(",")]
    for part in parts:
        payload[part] = {"command": command_line("bench.papers"), "scale": asdict(scale), "ipcs": ipcs, "results": {}}
    with tempfile.TemporaryDirectory(prefix="condense-bench-experts-") as experts:
        for name in args.datasets.split(","):
            data = distill_bench.load(root, name, scale.per_class)
            baselines = distill_bench.baselines(data, scale, ipcs, args.device)
            log(f"{name}: random real " + ", ".join(f"IPC {k} {mean_std(v['accuracy'])}" for k, v in baselines["random"].items()))
            for part in parts:
                variants = {"pad_ablation": pad_variants, "fiex_dc_dm": fiex_variants}[part]
                res = payload[part]["results"][name] = baselines | {"rows": []}
                jobs = [distill_bench.cell_job(args.distill_scale, scale, root, name, ipc, method, experts, args.iterations,
                                               args.device) | {"overrides": overrides, "variant": variant}
                        for ipc in ipcs for variant, method, overrides in variants(ipc)]

                def keep(row: dict, res: dict = res) -> None:
                    res["rows"].append(row)
                    log(f"  {name} IPC {row['ipc']} {row['variant']} {row['overrides']}: {mean_std(row['accuracy'])}")
                    save()

                distill_bench.run_jobs(jobs, args.jobs, keep)


def _starts(resolved: dict) -> str:
    """The trajectory start epochs a run resolved to (defaults change; the row keeps what it ran)."""
    if resolved.get("max_start_epoch_final") is None:
        return ""
    return f"{resolved['min_start_epoch']}, {resolved['max_start_epoch']}, {resolved['max_start_epoch_final']}"


def markdown(payload: dict) -> str:
    lines = ["## The seed papers' experiments at CPU scale\n"]
    for part in PARTS[:3]:
        if part not in payload:
            continue
        sec = payload[part]
        title = {"el2n_windows": "EL2N decile windows (001 Sec. 4.4, Fig. 1)",
                 "class_balance": "Class-balanced vs global pruning (001 Sec. 4.2, Tables 3 and 4)",
                 "tdds_sweep": "TDDS window, beta and range (002 Sec. 5.3, Figs. 4 and 5)"}[part]
        lines += [f"### {title}\n", f"Command: `{sec['command']}`; scale {sec['scale']}\n", f"Quoted: {QUOTED[part]}\n"]
        for name, res in sec["results"].items():
            lines.append(f"#### {name} ({res['train_samples']} training samples)\n")
            keeps = sorted({r["keep"] for r in res["rows"]})
            random = {r["keep"]: r for r in res["rows"] if r["name"] == "random"}
            lines += ["| subset | keep | kept | accuracy | vs random (points) | class KL |", "|---|---|---|---|---|---|"]
            for keep in keeps:
                for row in (r for r in res["rows"] if r["keep"] == keep):
                    gain = 100 * (np.asarray(row["accuracy"]) - np.asarray(random[keep]["accuracy"]))
                    vs = "" if row["name"] == "random" else f"{gain.mean():+.2f} ± {gain.std():.2f}"
                    label = percentile_label(row["decile"]) if "decile" in row else row["name"]
                    lines.append(f"| {label} | {keep:.0%} | {row['kept']} | {mean_std(row['accuracy'])} | {vs} | "
                                 f"{row['class_kl']:.6f} |")
            lines.append("")
    notes = {
        "pad_ablation": ("FIEX / FIEM ablation (003 Sec. 4.3.1, Table 3b)", "fiem_ratio",
                         f"FIEM's alpha is PAD's default by IPC (Table 10), or {FIEM_WHERE_DEFAULT_IS_NONE} at IPC 1, "
                         "where PAD's default leaves no parameter out."),
        "fiex_dc_dm": ("FIEX for DC and DM (003 App. A.1, Table 6)", "fiex_ratio",
                       "The share left out is each class's hardest by EL2N (from the distill scale's proxy run)."),
    }
    for part, (title, knob, note) in notes.items():
        if part not in payload:
            continue
        sec = payload[part]
        lines += [f"### {title}\n", f"Command: `{sec['command']}`; scale {sec['scale']}\n", f"Quoted: {QUOTED[part]}\n",
                  f"{note}\n"]
        for name, res in sec["results"].items():
            lines += [f"#### {name}\n", f"| run | IPC | {knob} | start epochs (T-, T, T+) | accuracy | vs random real (points) | wall s |",
                      "|---|---|---|---|---|---|---|"]
            for ipc in sec["ipcs"]:
                random = res["random"][str(ipc)]
                lines.append(f"| random real | {ipc} | | | {mean_std(random['accuracy'])} | | |")
                for row in (r for r in res["rows"] if r["ipc"] == ipc):
                    gain = 100 * (row["mean"] - random["mean"])
                    lines.append(f"| {row['variant']} | {ipc} | {row['overrides'][knob]} | {_starts(row['resolved'])} | "
                                 f"{mean_std(row['accuracy'])} | {gain:+.2f} | {row['wall_seconds']:.0f} |")
            lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(PRUNE_SCALES), default="cpu", help="scale of the pruning parts")
    parser.add_argument("--distill-scale", choices=sorted(distill_bench.SCALES), default="cpu", help="scale of the distillation parts")
    parser.add_argument("--datasets", default="mnist,fashion-mnist")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tdds-keeps", default="0.1,0.3")
    parser.add_argument("--ipcs", default="1,10", help="IPCs of the distillation parts")
    parser.add_argument("--iterations", type=int, default=None, help="the distillation parts' budget (default: the distill scale's)")
    parser.add_argument("--jobs", type=int, default=2, help="distillation runs side by side")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help="which parts to run; the others are kept from the previous results file")
    parser.add_argument("--render", action="store_true", help="only write the Markdown again from the results file")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the results files (read and written)")
    args = parser.parse_args()
    keep_freed_memory()  # as the worker does
    parts = args.parts.split(",")
    if unknown := set(parts) - set(PARTS):
        parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    if set(parts) & {"fiex_dc_dm"} and (unknown := {int(i) for i in args.ipcs.split(",")} - {ipc for _, ipc in FIEX_TABLE6_BEST}):
        parser.error(f"fiex_dc_dm has Table 6's ratios for IPC 1 and 10 only, not {sorted(unknown)}")
    scale = PRUNE_SCALES[args.scale]
    root = find_shared_datasets()
    started = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f}s] {msg}", flush=True)

    folder = args.results
    name = f"papers-{args.scale}"
    previous = folder / f"{name}.json"
    payload = {k: v for k, v in (json.loads(previous.read_text()) if previous.is_file() else {}).items() if k in PARTS}

    def save() -> None:
        write_results("bench.papers", name, payload, markdown(payload), folder)

    if args.render:
        (folder / f"{name}.md").write_text(markdown_header(json.loads(previous.read_text())) + markdown(payload))
        return

    prune_parts = [p for p in parts if p not in DISTILL_PARTS]
    for part in prune_parts:
        payload[part] = {"command": command_line("bench.papers"), "scale": scale.__dict__, "results": {}}
    for ds in args.datasets.split(",") if prune_parts else []:
        data = _subset(load_dataset(root / ds), scale)
        scores = el2n_and_random(data, scale)
        random = random_cells(data, scores, scale, args.seeds)
        log(f"{ds}: scored {len(data.y_train)} samples")
        for part in prune_parts:
            if part == "tdds_sweep":
                rows = tdds_sweep(data, scale, args.seeds, [float(k) for k in args.tdds_keeps.split(",")], random, log)
            else:
                run = {"el2n_windows": el2n_windows, "class_balance": class_balance}[part]
                rows = run(data, scores, scale, args.seeds, random, log)
            payload[part]["results"][ds] = {"train_samples": int(len(data.y_train)), "rows": rows}
            save()
    if distilled := [p for p in parts if p in DISTILL_PARTS]:
        distill_parts(distilled, args, root, payload, save, log)
    save()
    log(f"wrote {folder / name}.json and .md")


if __name__ == "__main__":
    main()
