"""How many proxy runs EL2N needs: the rank correlation of an average over k runs with the 10-run average
Paul et al. use, at the default early epoch, and of the last-epoch single-run score the old default used.

    python -m bench.el2n_seeds          # Fashion-MNIST, 300 per class, ConvNet width 16, about a minute on 2 cores

The figures behind ``engine.scores.el2n.SEEDS``.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
from scipy.stats import spearmanr

from bench.common import find_shared_datasets, write_results
from engine.data import load_dataset, subsample_per_class
from engine.pipeline.prune_config import PruneConfig
from engine.pipeline.scoring import compute_scores
from engine.scores.el2n import snapshot_epoch

MODULE = "bench.el2n_seeds"
REFERENCE_RUNS = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--per-class", type=int, default=300)
    parser.add_argument("--width", type=int, default=16)
    args = parser.parse_args()

    full = load_dataset(find_shared_datasets() / args.dataset)
    data = full.with_train_subset(subsample_per_class(full.y_train, args.per_class))
    proxy = replace(PruneConfig().proxy, width=args.width)
    early = snapshot_epoch(proxy.epochs, None)
    runs = [
        compute_scores(data, ["el2n"], proxy, params={"el2n": {"epoch": early, "seeds": 1}}, seed=s).scores["el2n"]
        for s in range(REFERENCE_RUNS)
    ]
    last = compute_scores(data, ["el2n"], proxy, params={"el2n": {"epoch": proxy.epochs, "seeds": 1}}).scores["el2n"]
    reference = np.mean(runs, axis=0)
    rows = {f"{k} seeds, epoch {early}": float(spearmanr(np.mean(runs[:k], axis=0), reference)[0]) for k in (1, 2, 4, 6)}
    rows[f"1 seed, last epoch ({proxy.epochs})"] = float(spearmanr(last, reference)[0])

    table = "\n".join(f"| {name} | {rho:.3f} |" for name, rho in rows.items())
    markdown = (
        f"EL2N on {args.dataset} ({args.per_class} per class), ConvNet width {args.width}, {proxy.epochs}-epoch proxy: "
        f"Spearman correlation with the {REFERENCE_RUNS}-run average at epoch {early}.\n\n"
        f"| score | Spearman |\n|---|---|\n{table}\n"
    )
    payload = {"dataset": args.dataset, "per_class": args.per_class, "width": args.width, "early_epoch": early, "spearman": rows}
    json_path, md_path = write_results(MODULE, "el2n-seeds-cpu", payload, markdown)
    print(markdown)
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
