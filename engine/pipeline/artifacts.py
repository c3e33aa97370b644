"""What each file a job writes is, in one line: the API's artifact listing and the docs read these."""

from __future__ import annotations

ARTIFACTS: dict[str, str] = {
    # prune
    "kept.csv": "one row per kept sample, most important first: index, source file or row, label, class, score, rank",
    "scores.csv": "every training sample: index, source, label, class, score, rank, whether it was kept, weight",
    "scores.npy": "the score of every training sample (float64, training order)",
    "ranking.npy": "training indices, most important first (int64)",
    "indices.npy": "the kept training indices (int64)",
    "indices.json": "the kept training indices (and weights) as JSON",
    "weights.npy": "importance weights of the kept samples (TDDS Eq. 13), where asked for",
    "coreset.npz": "the kept subset and the test split as arrays, ready to upload again",
    "subset.zip": "the kept subset and the test split as class folders of images, the upload's own files where it had them",
    "samples.json": "a few kept and pruned samples of each class with their sources and images",
    "preview.png": "the kept (or synthetic) images, one row per class, named with the class and its count",
    # sweep
    "sweep.json": "one row per distinct kept set of the sweep: the points that chose it, accuracy, gain and verdict",
    "sweep.csv": "the sweep's rows as CSV",
    "selections.npz": "each sweep point's kept indices",
    "curve.png": "accuracy against the kept fraction, each score a line with error bars",
    # distill
    "synthetic.safetensors": "the synthetic images (normalised), labels, mean/std and learned lr (safetensors)",
    "synthetic.npz": "the same arrays as synthetic.safetensors, as .npz (np.load(allow_pickle=False))",
    "synthetic_png.zip": "the synthetic images de-normalised, as PNGs in one folder per class",
    "loss_curve.json": "the distillation loss by iteration",
    "loss_curve.png": "the distillation loss by iteration, as a chart",
    # every job
    "report.json": "the full report: configuration, what auto resolved and why, accuracies, gains and verdicts, timings",
}


def describe_artifact(name: str) -> str:
    return ARTIFACTS.get(name, "")
