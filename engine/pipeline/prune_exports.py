"""A prune job's files beyond the engine's arrays: plain-text forms for people not using Python
(``kept.csv``, one row per kept sample naming its source file or row; ``scores.csv``, every sample;
``indices.json``), ``coreset.npz`` and ``subset.zip`` (the kept subset as a dataset that can be uploaded again or
loaded with the engine, the second as class folders of images with the upload's own files), ``preview.png``,
the most important kept images of each class, one row per class, and ``samples.json``, a few kept and pruned
samples of each class with their source names and images, which the dashboard shows. The CLI and the service write them through
``PruneResult.write``, so both hand a user the same files."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np

from engine.atomic import write_atomic
from engine.data.dataset import ImageDataset
from engine.data.export import save_npz
from engine.data.imagefolder_zip import png_data_url, write_dataset_zip
from engine.visualize import save_selection_preview


def _ranks(ranking: np.ndarray) -> np.ndarray:
    rank = np.empty_like(ranking)
    rank[ranking] = np.arange(len(ranking))
    return rank


def _weights_by_index(indices: np.ndarray, weights: np.ndarray | None) -> dict[int, float]:
    return dict(zip(indices.tolist(), weights.tolist(), strict=True)) if weights is not None else {}


def _write_csv(path: Path, header: list[str], rows) -> Path:
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    return write_atomic(path, lambda f: f.write(text.getvalue().encode()))


def write_scores_csv(path: Path, dataset: ImageDataset, scores: np.ndarray, ranking: np.ndarray, indices: np.ndarray,
                     weights: np.ndarray | None) -> Path:
    """One row per training sample: its index, source id, label and class name, score, rank (0 = most important),
    whether it was kept, and its weight where the selection gives weights."""
    rank = _ranks(ranking)
    weight_of = _weights_by_index(indices, weights)
    selected = set(indices.tolist())
    rows = ([i, source, label, dataset.classes[label], repr(score), int(rank[i]), int(i in selected), weight_of.get(i, "")]
            for i, (source, label, score) in enumerate(zip(dataset.source_names(), dataset.y_train.tolist(),
                                                            scores.tolist(), strict=True)))
    return _write_csv(path, ["index", "source", "label", "class_name", "score", "rank", "selected", "weight"], rows)


def write_kept_csv(path: Path, dataset: ImageDataset, scores: np.ndarray, ranking: np.ndarray, indices: np.ndarray,
                   weights: np.ndarray | None) -> Path:
    """One row per kept sample, most important first: its index in the training order, its source id (the
    upload's file or row, held-out split included), label, class name, score and rank."""
    rank = _ranks(ranking)
    kept = indices[np.argsort(rank[indices], kind="stable")]
    weight_of = _weights_by_index(indices, weights)
    rows = ([i, source, int(dataset.y_train[i]), dataset.classes[int(dataset.y_train[i])], repr(float(scores[i])),
             int(rank[i]), weight_of.get(i, "")]
            for i, source in zip(kept.tolist(), dataset.source_names(kept), strict=True))
    return _write_csv(path, ["index", "source", "label", "class_name", "score", "rank", "weight"], rows)


def write_indices_json(path: Path, indices: np.ndarray, weights: np.ndarray | None) -> Path:
    body = {"count": len(indices), "indices": indices.tolist(),
            "weights": weights.tolist() if weights is not None else None}
    return write_atomic(path, lambda f: f.write(json.dumps(body).encode()))


def write_coreset(path: Path, dataset: ImageDataset, indices: np.ndarray) -> Path:
    subset = dataset.with_train_subset(indices)
    return save_npz(path, subset.x_train, subset.y_train, x_test=subset.x_test, y_test=subset.y_test,
                    classes=subset.classes)


SAMPLES_PER_CLASS = 8  # of each class, kept and pruned, in samples.json


def write_samples_json(path: Path, dataset: ImageDataset, scores: np.ndarray, ranking: np.ndarray,
                       indices: np.ndarray) -> Path:
    """A few kept and a few pruned samples of each class, most important first, each with its source id, score
    and rank and its image as a PNG data URL: what the dashboard shows as grids a person can put names to."""
    rank = _ranks(ranking)
    kept = np.zeros(len(ranking), dtype=bool)
    kept[indices] = True
    sources = dataset.source_names()
    groups: dict[str, list[dict]] = {"kept": [], "pruned": []}
    for c, class_name in enumerate(dataset.classes):
        for group, mask in (("kept", kept), ("pruned", ~kept)):
            members = ranking[(mask & (dataset.y_train == c))[ranking]][:SAMPLES_PER_CLASS]
            groups[group] += [{"index": int(i), "source": sources[i], "class_name": class_name,
                               "score": float(scores[i]), "rank": int(rank[i]),
                               "image": png_data_url(dataset.x_train[i])}
                              for i in members.tolist()]
    return write_atomic(path, lambda f: f.write(json.dumps(groups).encode()))


def write_exports(out_dir: Path, dataset: ImageDataset, scores: np.ndarray, ranking: np.ndarray,
                  indices: np.ndarray, weights: np.ndarray | None, origin: str | os.PathLike[str] | None = None) -> list[Path]:
    """``origin``: the upload ``dataset`` was read from, whose image files ``subset.zip`` copies as they are."""
    return [
        write_kept_csv(out_dir / "kept.csv", dataset, scores, ranking, indices, weights),
        write_scores_csv(out_dir / "scores.csv", dataset, scores, ranking, indices, weights),
        write_indices_json(out_dir / "indices.json", indices, weights),
        write_coreset(out_dir / "coreset.npz", dataset, indices),
        write_dataset_zip(out_dir / "subset.zip", dataset, indices, origin),
        write_samples_json(out_dir / "samples.json", dataset, scores, ranking, indices),
        save_selection_preview(dataset, ranking, indices, out_dir / "preview.png"),
    ]
