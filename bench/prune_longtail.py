"""Prune benchmark on long-tailed data (issue 37): the default job and candidate ``auto`` rules against two random
baselines, on long-tailed variants of MNIST and Fashion-MNIST.

    python -m bench.prune_longtail                         # both datasets, imbalance ratios 10 and 50
    python -m bench.prune_longtail --datasets mnist --ratios 10 --keeps 0.05,0.3

Each variant keeps class c of C ``500 * ratio ** (-c / (C - 1))`` training images (``engine.data.long_tailed_indices``,
the long-tailed CIFAR profile; seed recorded) and a balanced test set (every class cut to the smallest class's test
count). One proxy run per variant scores EL2N and records the features prototypes need; each candidate's subset is
then trained with bench.prune's CPU protocol. Two baselines per keep: random draws with the candidate's own per-class
counts (within-class quality: which samples, not how many per class) and a uniform random draw of the same size (what
a user would otherwise do). Seed s draws random subset s and trains every row's model s, so all gains are paired by
seed, with the 95% t-interval verdict.

Candidates: today's default (``method: auto``, equal shares per class), the same with the budget split in proportion
to class sizes (the default before issue 37) or to their square root (``engine.select.allocation``), and each
allocation with a per-class count limit above which a class takes CCS strata instead of prototypes
(``engine.select.auto.PROTOTYPES_UP_TO_COUNT``).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.common import RESULTS, command_line, find_shared_datasets, mean_std, write_results
from bench.prune import SCALES, Scale, eval_spec
from engine.allocator import keep_freed_memory
from engine.data import ImageDataset, load_dataset, long_tailed_indices, subsample_per_class
from engine.evaluate import evaluate_training_set, random_subset_like
from engine.evaluate.verdict import paired_verdict
from engine.pipeline.prune_config import ProxyConfig
from engine.pipeline.scoring import compute_scores
from engine.scores import get_score
from engine.select import class_budgets, importance_of, select_indices
from engine.select.auto import AUTO_SCORE, resolve_auto
from engine.select.config import SelectionConfig
from engine.select.budget import resolve_count

LARGEST = 500  # the largest class's training images, as bench.prune's 500 per class
DATASET_SEED = 0
# name -> (allocation, per-class count limit of prototypes); the first is what a default job does today (equal
# shares since issue 37), the second what it did before.
CANDIDATES: dict[str, tuple[str, int | None]] = {
    "default (auto)": ("auto", None),
    "proportional allocation": ("proportional", None),
    "proportional, CCS above 50 per class": ("proportional", 50),
    "proportional, CCS above 100 per class": ("proportional", 100),
    "sqrt allocation": ("sqrt", None),
    "auto, CCS above 50 per class": ("auto", 50),
    "auto, CCS above 100 per class": ("auto", 100),
}


def long_tailed(dataset: ImageDataset, ratio: float, largest: int = LARGEST) -> ImageDataset:
    """The long-tailed training subset of ``dataset`` and its test set cut to balance."""
    data = dataset.with_train_subset(long_tailed_indices(dataset.y_train, ratio, DATASET_SEED, largest=largest))
    test = subsample_per_class(data.y_test, int(np.bincount(data.y_test).min()), seed=DATASET_SEED)
    return replace(data, x_test=data.x_test[test], y_test=data.y_test[test])


def variant(name: str, ratio: float, data: ImageDataset, scale: Scale, keeps: list[float], seeds: int, log) -> dict:
    labels, classes = data.y_train, data.num_classes
    proxy = ProxyConfig(model="convnet", width=scale.width, epochs=scale.proxy_epochs)
    scoring = compute_scores(data, [AUTO_SCORE], proxy, seed=0, features=True)
    importance = importance_of(scoring.scores[AUTO_SCORE], get_score(AUTO_SCORE).higher_is_important)
    out = []
    for keep in keeps:
        total = resolve_count(keep, len(labels))
        spec = eval_spec(scale, total, seeds)

        def train(indices_of_seed) -> list[float]:
            return [evaluate_training_set(data, indices_of_seed(s), replace(spec, seeds=1), base_seed=100 + s).per_seed[0]
                    for s in range(seeds)]

        rng_uniform = [np.random.default_rng(s).choice(len(labels), total, replace=False) for s in range(seeds)]
        uniform = train(lambda s: rng_uniform[s])
        same_counts: dict[str, list[float]] = {}
        rows = []
        for candidate, (allocation, up_to_count) in CANDIDATES.items():
            resolved = resolve_auto(SelectionConfig(keep=keep, allocation=allocation), labels, classes,
                                    prototypes_up_to_count=up_to_count)
            idx = select_indices(importance, labels, classes, resolved.selection, 0, scoring.features, resolved.per_class)
            counts = np.bincount(labels[idx], minlength=classes)
            shares = resolved.selection.allocation  # auto resolved
            if shares not in same_counts:
                assert np.array_equal(counts, class_budgets(labels, classes, total, shares))
                same_counts[shares] = train(lambda s, kept=idx: random_subset_like(labels, kept, classes, s))
            accuracy = evaluate_training_set(data, idx, spec, base_seed=100).per_seed
            gains = {base: paired_verdict(np.asarray(accuracy) - np.asarray(ref)).to_dict()
                     for base, ref in (("same_counts", same_counts[shares]), ("uniform", uniform))}
            policy = resolved.to_dict("auto")
            rows.append({"candidate": candidate, "allocation": shares, "up_to_count": up_to_count,
                         "modes": policy["per_class_modes"] or [policy["mode"]] * classes, "counts": counts.tolist(),
                         "accuracy": accuracy, "gain": gains})
            log(f"{name} ratio {ratio:g} keep {keep}: {candidate} {mean_std(accuracy)}; over same counts "
                f"{100 * gains['same_counts']['mean']:+.2f} ({gains['same_counts']['verdict']}), over uniform "
                f"{100 * gains['uniform']['mean']:+.2f} ({gains['uniform']['verdict']})")
        out.append({"keep": keep, "kept": total, "eval_epochs": spec.epochs, "uniform": uniform,
                    "same_counts": same_counts, "rows": rows})
    return {"dataset": name, "ratio": ratio, "dataset_seed": DATASET_SEED,
            "class_sizes": np.bincount(labels, minlength=classes).tolist(), "test_per_class": int(np.bincount(data.y_test)[0]),
            "keeps": out}


def summary(block: dict) -> dict[str, dict]:
    """Per candidate: the mean gain over same-counts random across keeps 5/10/30% and the worst gain over either
    baseline at any keep (issue 37's bar: >= +1.0, no budget below -1.0, never below uniform random)."""
    out: dict[str, dict] = {}
    # The block's own candidates: a results file may hold blocks measured before a candidate was added.
    for candidate in dict.fromkeys(r["candidate"] for k in block["keeps"] for r in k["rows"]):
        rows = [(k["keep"], next(r for r in k["rows"] if r["candidate"] == candidate)) for k in block["keeps"]]
        core = [100 * r["gain"]["same_counts"]["mean"] for keep, r in rows if keep in (0.05, 0.1, 0.3)]
        out[candidate] = {
            "mean_same_counts_5_10_30": float(np.mean(core)) if core else None,
            "worst_same_counts": min(100 * r["gain"]["same_counts"]["mean"] for _, r in rows),
            "worst_uniform": min(100 * r["gain"]["uniform"]["mean"] for _, r in rows),
        }
        s = out[candidate]
        s["meets_bar"] = (s["mean_same_counts_5_10_30"] is not None and s["mean_same_counts_5_10_30"] >= 1.0
                          and s["worst_same_counts"] >= -1.0 and s["worst_uniform"] >= 0.0)
    return out


def markdown(payload: dict) -> str:
    lines = ["## Long-tailed prune benchmark (CPU scale)\n",
             "Commands: " + ", ".join(f"`{c}`" for c in payload["commands"]) + "\n",
             f"Scale: {payload['scale']}; largest class {payload['largest']} training images, dataset seed {DATASET_SEED}; "
             f"{payload['seeds']} seeds. Gains are in points, paired by seed (random draw s, model seed s), with the 95% "
             "paired t-interval's verdict: over random draws with the candidate's own per-class counts ('same "
             "counts') and over a uniform random draw of the same size ('uniform').\n"]
    for block in payload["results"]:
        lines += [f"### {block['dataset']}, imbalance ratio {block['ratio']:g}\n",
                  f"Class sizes {block['class_sizes']}; {block['test_per_class']} test images per class.\n",
                  "| keep | candidate | per-class policy | kept per class | accuracy | over same counts | over uniform |",
                  "|---|---|---|---|---|---|---|"]
        for keep in block["keeps"]:
            lines.append(f"| {keep['keep']:.0%} | uniform random | | | {mean_std(keep['uniform'])} | | |")
            for row in keep["rows"]:
                modes = ", ".join(f"{m} x{row['modes'].count(m)}" for m in dict.fromkeys(row["modes"]))
                same, uni = row["gain"]["same_counts"], row["gain"]["uniform"]
                lines.append(f"| {keep['keep']:.0%} | {row['candidate']} | {modes} | {row['counts']} | "
                             f"{mean_std(row['accuracy'])} | {100 * same['mean']:+.2f} {same['verdict']} | "
                             f"{100 * uni['mean']:+.2f} {uni['verdict']} |")
        lines += ["", "| candidate | mean over same counts, keeps 5/10/30% | worst over same counts | worst over uniform | "
                  "issue 37's bar (mean >= +1.0, none below -1.0, never below uniform) |", "|---|---|---|---|---|"]
        for candidate, s in summary(block).items():
            mean = "n/a" if s["mean_same_counts_5_10_30"] is None else f"{s['mean_same_counts_5_10_30']:+.2f}"
            lines.append(f"| {candidate} | {mean} | {s['worst_same_counts']:+.2f} | {s['worst_uniform']:+.2f} | "
                         f"{'met' if s['meets_bar'] else 'not met'} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="cpu")
    parser.add_argument("--datasets", default="mnist,fashion-mnist")
    parser.add_argument("--ratios", default="10,50")
    parser.add_argument("--keeps", default="0.01,0.05,0.1,0.3,0.5")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--largest", type=int, default=LARGEST, help="training images of the largest class")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    keep_freed_memory()  # as the worker does
    scale = SCALES[args.scale]
    keeps = [float(k) for k in args.keeps.split(",")]
    root = find_shared_datasets()
    started = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f}s] {msg}", flush=True)

    name = f"prune-longtail-{args.scale}"
    folder = args.results
    previous = folder / f"{name}.json"
    old = json.loads(previous.read_text()) if previous.is_file() else {}
    payload = {"commands": [*old.get("commands", []), command_line("bench.prune_longtail")], "scale": scale.__dict__,
               "largest": args.largest, "seeds": args.seeds, "results": old.get("results", [])}
    for ds in args.datasets.split(","):
        dataset = load_dataset(root / ds)
        for ratio in (float(r) for r in args.ratios.split(",")):
            block = variant(ds, ratio, long_tailed(dataset, ratio, args.largest), scale, keeps, args.seeds, log)
            payload["results"] = [b for b in payload["results"] if (b["dataset"], b["ratio"]) != (ds, ratio)] + [block]
            # written after each variant, so a run stopped part-way keeps what it measured
            write_results("bench.prune_longtail", name, payload, markdown(payload), folder)
    log(f"wrote {folder / name}.json and .md")


if __name__ == "__main__":
    main()
