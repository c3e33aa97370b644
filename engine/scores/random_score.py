"""Random baseline: i.i.d. uniform scores from the job's seed, so "keep highest" is a random subset."""

from __future__ import annotations

import numpy as np

from engine.scores.registry import ScoreSpec, register_score


def score_random(num_samples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(num_samples)


register_score(
    ScoreSpec(
        name="random",
        title="Random",
        reference="baseline",
        higher_is_important=True,
        implementation=None,
    )
)
