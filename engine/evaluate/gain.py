"""What a subset is worth next to a random one of the same size: the figure a report leads with."""

from __future__ import annotations

import numpy as np


def gain_over_random(subset: dict, random: dict) -> dict:
    """Accuracy of the subset minus that of the random subset, per evaluation seed, then mean ± std.

    The two are trained from the same seeds (the same initial weights and batch order), so the per-seed
    differences are paired and their spread is the spread of the gain itself (DD-Ranking's
    "improvement over random" under one protocol).
    """
    diffs = np.asarray(subset["per_seed"], dtype=np.float64) - np.asarray(random["per_seed"], dtype=np.float64)
    return {
        "mean": float(diffs.mean()),
        "std": float(diffs.std()),
        "per_seed": diffs.tolist(),
        "beats_random": bool(diffs.mean() > 0),
    }
