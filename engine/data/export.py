"""Writing a dataset (such as a pruned coreset) as an ``.npz`` that :func:`load_dataset` reads back."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine.atomic import atomic_path


def _compact(x: np.ndarray) -> np.ndarray:
    """uint8 when ``x`` is exactly some uint8 array divided by 255 (as loaders produce), else float32.

    The test compares against the loaders' own float32 arithmetic, so the round trip is bit-exact.
    """
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x
    x = x.astype(np.float32, copy=False)
    if x.size and np.isfinite(x).all() and x.min() >= 0.0 and x.max() <= 1.0:
        q = np.rint(x * np.float32(255)).astype(np.uint8)
        if np.array_equal(q.astype(np.float32) / np.float32(255), x):
            return q
    return x


def save_npz(
    path: str | os.PathLike[str],
    x: np.ndarray,
    y: np.ndarray,
    *,
    x_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    classes: Sequence[str] | None = None,
) -> Path:
    """Write images (in the layout given, normally (N, C, H, W)) and labels to a compressed ``.npz``.

    The file is written to a temporary name in the same directory and renamed into place, so a
    reader never sees a half-written file, even if the writer crashes.

    Returns:
        The path written.
    """
    path = Path(path)
    arrays = {"x": _compact(x), "y": np.asarray(y, dtype=np.int64)}
    if x_test is not None and y_test is not None:
        arrays |= {"x_test": _compact(x_test), "y_test": np.asarray(y_test, dtype=np.int64)}
    if classes is not None:
        arrays["classes"] = np.array(list(classes), dtype=str)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    return path
