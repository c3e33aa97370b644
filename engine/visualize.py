"""Image grids that let a person see a result at a glance: one row per class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from engine.data.dataset import ImageDataset


def class_grid(x: np.ndarray, y: np.ndarray, num_classes: int, per_class: int = 10, pad: int = 2) -> np.ndarray:
    """Up to ``per_class`` images of each class, in the order given, as a uint8 (H, W, 3) mosaic.

    ``x`` is (N, C, H, W) in [0, 1]; one channel is shown as grey. Empty cells stay white, so a
    class with fewer images than the others is visible as such.
    """
    if x.ndim != 4 or len(x) != len(y):
        raise ValueError(f"expected images (N, C, H, W) and N labels, got {x.shape} and {y.shape}")
    _, c, h, w = x.shape
    rgb = np.repeat(x, 3, axis=1) if c == 1 else x[:, :3]
    grid = np.ones((num_classes * (h + pad) + pad, per_class * (w + pad) + pad, 3), dtype=np.float32)
    for k in range(num_classes):
        for j, i in enumerate(np.flatnonzero(y == k)[:per_class]):
            top, left = pad + k * (h + pad), pad + j * (w + pad)
            grid[top : top + h, left : left + w] = rgb[i].transpose(1, 2, 0)
    return (np.clip(grid, 0, 1) * 255).round().astype(np.uint8)


def save_png(image: np.ndarray, path: Path, min_side: int = 256) -> Path:
    """Writes ``image`` as PNG, scaled up by a whole factor (nearest) so small digits stay legible."""
    scale = max(1, -(-min_side // min(image.shape[:2])))
    Image.fromarray(image).resize((image.shape[1] * scale, image.shape[0] * scale), Image.NEAREST).save(path)
    return path


def save_selection_preview(dataset: ImageDataset, ranking: np.ndarray, indices: np.ndarray, path: Path) -> Path:
    """The kept training images of each class, most important first (``ranking`` order)."""
    kept = np.zeros(len(ranking), dtype=bool)
    kept[indices] = True
    order = ranking[kept[ranking]]
    return save_png(class_grid(dataset.x_train[order], dataset.y_train[order], dataset.num_classes), path)
