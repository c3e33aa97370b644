"""Turns a job's result into downloadable files and records them as blobs.

A distill job's files are the engine's own (``DistillResult.write``: ``synthetic.safetensors``,
``synthetic.npz``, ``preview.png``, ``loss_curve.json``, ``report.json``). A prune job gets,
besides the engine's own ``.npy``/``report.json`` files, plain-text forms
(``scores.csv``, ``indices.json``) for people not using Python, ``coreset.npz``: the kept
subset as a dataset that can be uploaded again or loaded with the engine, and ``preview.png``:
the most important kept images of each class, one row per class.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session

from app.blobstore import BlobStore, sha256_file
from app.models import Artifact
from app.services import blobs as stored_blobs
from engine.data.dataset import ImageDataset
from engine.data.export import save_npz
from engine.pipeline.prune import PruneResult
from engine.visualize import save_selection_preview

CONTENT_TYPES = {
    ".npy": "application/octet-stream",
    ".safetensors": "application/octet-stream",
    ".npz": "application/zip",
    ".json": "application/json",
    ".csv": "text/csv; charset=utf-8",
    ".png": "image/png",
}


def write_prune_artifacts(result: PruneResult, dataset: ImageDataset, out_dir: Path) -> list[Path]:
    paths = result.write(out_dir)
    paths.append(_write_scores_csv(result, dataset, out_dir / "scores.csv"))
    paths.append(_write_indices_json(result, out_dir / "indices.json"))
    subset = dataset.with_train_subset(result.indices)
    coreset = out_dir / "coreset.npz"
    save_npz(
        coreset, subset.x_train, subset.y_train, x_test=subset.x_test, y_test=subset.y_test, classes=subset.classes
    )
    paths.append(coreset)
    paths.append(save_selection_preview(dataset, result.ranking, result.indices, out_dir / "preview.png"))
    return paths


def _write_scores_csv(result: PruneResult, dataset: ImageDataset, path: Path) -> Path:
    rank = np.empty_like(result.ranking)
    rank[result.ranking] = np.arange(len(result.ranking))
    weight_of = (
        dict(zip(result.indices.tolist(), result.weights.tolist(), strict=True)) if result.weights is not None else {}
    )
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["index", "label", "score", "rank", "selected", "weight"])
        selected = set(result.indices.tolist())
        for i, (label, score) in enumerate(zip(dataset.y_train.tolist(), result.scores.tolist(), strict=True)):
            writer.writerow([i, label, repr(score), int(rank[i]), int(i in selected), weight_of.get(i, "")])
    return path


def _write_indices_json(result: PruneResult, path: Path) -> Path:
    body = {
        "count": len(result.indices),
        "indices": result.indices.tolist(),
        "weights": result.weights.tolist() if result.weights is not None else None,
    }
    path.write_text(json.dumps(body))
    return path


def store_artifacts(session: Session, blobs: BlobStore, job_id: str, paths: list[Path]) -> None:
    """Moves each file into the blob store (atomic put) and adds its row to the caller's transaction,
    which holds each blob until it commits (so a concurrent release cannot delete a shared one)."""
    digests = {path: sha256_file(path) for path in paths}
    for path in sorted(paths, key=lambda p: blobs.key_for(digests[p], p.suffix)):
        blob = stored_blobs.store(session, blobs, path, suffix=path.suffix, sha256=digests[path])
        session.add(
            Artifact(
                job_id=job_id,
                name=path.name,
                blob_key=blob.key,
                sha256=blob.sha256,
                size_bytes=blob.size,
                content_type=CONTENT_TYPES.get(path.suffix, "application/octet-stream"),
            )
        )
