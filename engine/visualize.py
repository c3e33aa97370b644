"""Image grids that let a person see a result at a glance: one row per class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

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


CELL_PIXELS = 48  # each image of a grid drawn at least this many pixels high, so small digits stay legible
MAX_SIDE = 2048  # ...unless the whole picture would grow past this
LABEL_WIDTH = 150  # the column of row labels, in pixels


def save_png(image: np.ndarray, path: Path, cell: int, row_labels: list[str] | None = None) -> Path:
    """Writes the grid ``image`` (cells ``cell`` pixels high) as PNG, scaled up by a whole factor (nearest) so each
    cell is about :data:`CELL_PIXELS` high, with ``row_labels`` (one per grid row) in a column on its left."""
    scale = max(1, min(-(-CELL_PIXELS // cell), MAX_SIDE // max(image.shape[:2])))
    picture = Image.fromarray(image).resize((image.shape[1] * scale, image.shape[0] * scale), Image.NEAREST)
    if row_labels:
        labelled = Image.new("RGB", (picture.width + LABEL_WIDTH, picture.height), "white")
        labelled.paste(picture, (LABEL_WIDTH, 0))
        draw = ImageDraw.Draw(labelled)
        font = ImageFont.load_default(size=max(11, min(16, picture.height // len(row_labels) // 3)))
        row = picture.height / len(row_labels)
        for k, text in enumerate(row_labels):
            draw.text((6, k * row + row / 2), text, fill="black", font=font, anchor="lm")
        picture = labelled
    picture.save(path)
    return path


def save_selection_preview(dataset: ImageDataset, ranking: np.ndarray, indices: np.ndarray, path: Path) -> Path:
    """The kept training images of each class, most important first (``ranking`` order), each row named with its
    class and how many of it were kept."""
    kept = np.zeros(len(ranking), dtype=bool)
    kept[indices] = True
    order = ranking[kept[ranking]]
    before = np.bincount(dataset.y_train, minlength=dataset.num_classes)
    after = np.bincount(dataset.y_train[indices], minlength=dataset.num_classes)
    labels = [f"{name}: {a} of {b} kept" for name, a, b in zip(dataset.classes, after, before, strict=True)]
    grid = class_grid(dataset.x_train[order], dataset.y_train[order], dataset.num_classes)
    return save_png(grid, path, cell=dataset.image_shape[1], row_labels=labels)


def save_loss_curve(losses: list[float], path: Path) -> Path:
    """The distillation loss by iteration as a line chart."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a worker
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=120)
    ax.plot(np.arange(1, len(losses) + 1), losses, color="#2f6fde")
    ax.set_xlabel("iteration")
    ax.set_ylabel("matching loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
