"""What a subset is worth next to a random one of the same size: the figure a report leads with."""

from __future__ import annotations

import numpy as np

from engine.evaluate.verdict import paired_verdict


def gain_over_random(subset: dict, random: dict) -> dict:
    """Accuracy of the subset minus that of the random subset, per evaluation seed, then mean ± std.

    The two are trained from the same seeds (the same initial weights and batch order), so the per-seed
    differences are paired and their spread is the spread of the gain itself (DD-Ranking's
    "improvement over random" under one protocol); ``verdict`` says whether it is more than noise
    (:mod:`engine.evaluate.verdict`).
    """
    diffs = np.asarray(subset["per_seed"], dtype=np.float64) - np.asarray(random["per_seed"], dtype=np.float64)
    return {**_spread(diffs), "verdict": paired_verdict(diffs).to_dict()}


def dd_ranking(hard: dict, random: dict, full: dict | None, weight: float = 0.5) -> dict:
    """DD-Ranking's label-robust figures (Li et al., "DD-Ranking: Rethinking the Evaluation of Dataset
    Distillation", 2025, the hard-label protocol), per evaluation seed, then mean ± std.

    ``hard`` is the synthetic set trained against its hard labels, ``random`` random real images of the same
    IPC under the same protocol, ``full`` the full training set. Improvement over random (IOR) is
    ``hard - random``; hard-label recovery (HLR) is ``full - hard``, the accuracy still missing without the
    soft labels' knowledge distillation; the label-robust score maps ``weight * IOR - (1 - weight) * HLR``
    (accuracies as fractions) onto [0, 1] by ``(e^a - e^-1) / (e - e^-1)``, DD-Ranking's normalisation
    with its default weight 0.5. Without a full-data run HLR and the score are None.
    """
    synthetic = np.asarray(hard["per_seed"], dtype=np.float64)
    ior = synthetic - np.asarray(random["per_seed"], dtype=np.float64)
    out: dict = {"protocol": "hard labels",
                 "improvement_over_random": {**_spread(ior), "verdict": paired_verdict(ior).to_dict()},
                 "hard_label_recovery": None, "label_robust_score": None, "weight": weight}
    if full is not None:
        hlr = float(full["mean"]) - synthetic
        score = (np.exp(weight * ior - (1 - weight) * hlr) - np.exp(-1)) / (np.exp(1) - np.exp(-1))
        out["hard_label_recovery"] = _spread(hlr)
        out["label_robust_score"] = _spread(score)
    return out


def _spread(values: np.ndarray) -> dict:
    return {"mean": float(values.mean()), "std": float(values.std()), "per_seed": values.tolist()}
