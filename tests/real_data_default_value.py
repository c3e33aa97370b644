"""The default prune job's subset beats a random one on real MNIST and Fashion-MNIST subsets.

Protocol (the one the margins below were measured with, on this project's 2-core CPU machine): 300
training images per class, the default job's score and ``mode: auto`` on a ConvNet width-16 proxy of the
default 10 epochs, then fresh ConvNet width-16 models trained 20 epochs on the kept subset (SEEDS seeds) and
on SEEDS random class-balanced subsets of the same size (one seed each). With 3 seeds Fashion-MNIST 5%
measured -0.53 points, inside the spread of random subsets alone (0.75 points across 5 of them at that
budget), so the test averages 5. Measured by this test with 5 (points over random, keep 1/5/10/30/50%):
MNIST +7.76 / +0.84 / +0.78 / +1.12 / +0.95, Fashion-MNIST +6.46 / +1.25 / +1.70 / +0.43 / +0.58.

Keep 50% is no longer evaluated here, to keep CI under 30 minutes: it was over half of the images these
evaluations train on (50 of the 96 percent kept across the five budgets), and ``bench.prune`` measures it with
3 seeds, paired (``bench/results/prune-cpu.md``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from engine.data import load_dataset, subsample_per_class
from engine.evaluate import EvalSpec, evaluate_training_set, random_subset_like
from engine.pipeline.prune_config import PruneConfig
from engine.pipeline.scoring import compute_scores
from engine.scores import get_score
from engine.select import importance_of, select_indices
from engine.select.auto import resolve_auto, score_of
from engine.select.config import SelectionConfig

WIDTH = 16
KEEPS = (0.01, 0.05, 0.1, 0.3)
MUST_BEAT = (0.05, 0.1, 0.3)
SEEDS = 5


def check_default_job_beats_random(shared_datasets: Path, name: str) -> None:
    """The test of each dataset's module: one module each, so that the two run on two xdist workers at once."""
    full = load_dataset(shared_datasets / name)
    data = full.with_train_subset(subsample_per_class(full.y_train, 300))
    default = PruneConfig()
    proxy = replace(default.proxy, width=WIDTH)
    labels, classes = data.y_train, data.num_classes
    # One proxy run serves every budget, as a job's scores would (auto resolves to prototypes up to 50%).
    score = score_of(default.method)  # the score auto's proxy run records
    scoring = compute_scores(data, [score], proxy, seed=default.seed, features=True)
    importance = importance_of(scoring.scores[score], get_score(score).higher_is_important)
    gains = {}
    for keep in KEEPS:
        selection = resolve_auto(SelectionConfig(keep=keep), labels, classes).selection
        kept = select_indices(importance, labels, classes, selection, default.seed, scoring.features)
        spec = EvalSpec(model="convnet", width=WIDTH, epochs=20, seeds=SEEDS)
        subset = evaluate_training_set(data, kept, spec, base_seed=1000).mean
        random = np.mean([
            evaluate_training_set(data, random_subset_like(labels, kept, classes, s), replace(spec, seeds=1), base_seed=1000 + s).mean
            for s in range(SEEDS)
        ])
        gains[keep] = 100 * (subset - random)
    print(f"{name}: gain over random (points) {gains}")
    assert all(gains[k] > 0 for k in MUST_BEAT), f"{name}: gain (points) {gains}"
    assert all(g >= -1 for g in gains.values()), f"{name}: auto more than 1 point below random {gains}"
