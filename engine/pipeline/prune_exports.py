"""A prune job's files beyond the engine's arrays: plain-text forms for people not using Python
(``scores.csv``, ``indices.json``), ``coreset.npz``, the kept subset as a dataset that can be uploaded again or
loaded with the engine, and ``preview.png``, the most important kept images of each class, one row per class.
The CLI and the service write them through ``PruneResult.write``, so both hand a user the same files."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from engine.atomic import write_atomic
from engine.data.dataset import ImageDataset
from engine.data.export import save_npz
from engine.visualize import save_selection_preview


def write_scores_csv(path: Path, labels: np.ndarray, scores: np.ndarray, ranking: np.ndarray, indices: np.ndarray,
                     weights: np.ndarray | None) -> Path:
    """One row per training sample: its index, label, score, rank (0 = most important), whether it was kept,
    and its weight where the selection gives weights."""
    rank = np.empty_like(ranking)
    rank[ranking] = np.arange(len(ranking))
    weight_of = dict(zip(indices.tolist(), weights.tolist(), strict=True)) if weights is not None else {}
    selected = set(indices.tolist())
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["index", "label", "score", "rank", "selected", "weight"])
    for i, (label, score) in enumerate(zip(labels.tolist(), scores.tolist(), strict=True)):
        writer.writerow([i, label, repr(score), int(rank[i]), int(i in selected), weight_of.get(i, "")])
    return write_atomic(path, lambda f: f.write(text.getvalue().encode()))


def write_indices_json(path: Path, indices: np.ndarray, weights: np.ndarray | None) -> Path:
    body = {"count": len(indices), "indices": indices.tolist(),
            "weights": weights.tolist() if weights is not None else None}
    return write_atomic(path, lambda f: f.write(json.dumps(body).encode()))


def write_coreset(path: Path, dataset: ImageDataset, indices: np.ndarray) -> Path:
    subset = dataset.with_train_subset(indices)
    return save_npz(path, subset.x_train, subset.y_train, x_test=subset.x_test, y_test=subset.y_test,
                    classes=subset.classes)


def write_exports(out_dir: Path, dataset: ImageDataset, scores: np.ndarray, ranking: np.ndarray,
                  indices: np.ndarray, weights: np.ndarray | None) -> list[Path]:
    return [
        write_scores_csv(out_dir / "scores.csv", dataset.y_train, scores, ranking, indices, weights),
        write_indices_json(out_dir / "indices.json", indices, weights),
        write_coreset(out_dir / "coreset.npz", dataset, indices),
        save_selection_preview(dataset, ranking, indices, out_dir / "preview.png"),
    ]
