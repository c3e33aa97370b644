"""Preview grids: one row per class, images in the given order, empty cells left white."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from engine.data.dataset import ImageDataset
from engine.visualize import CELL_PIXELS, LABEL_WIDTH, class_grid, save_selection_preview


def test_grid_rows_are_classes_and_columns_keep_order() -> None:
    # Each image is flat grey at a level that encodes its index, so positions can be read back.
    x = np.stack([np.full((1, 4, 4), v) for v in (0.0, 0.2, 0.4, 0.6)]).astype(np.float32)
    y = np.array([1, 0, 1, 0])
    grid = class_grid(x, y, num_classes=3, per_class=2, pad=1)
    assert grid.shape == (3 * 5 + 1, 2 * 5 + 1, 3) and grid.dtype == np.uint8

    def cell(row: int, col: int) -> int:
        return int(grid[1 + row * 5, 1 + col * 5, 0])

    assert [cell(0, 0), cell(0, 1)] == [51, 153]  # class 0: samples 1 and 3, in input order
    assert [cell(1, 0), cell(1, 1)] == [0, 102]  # class 1: samples 0 and 2
    assert cell(2, 0) == cell(2, 1) == 255  # class 2 has no image: white


def test_selection_preview_shows_only_kept_samples_most_important_first(digits: ImageDataset, tmp_path: Path) -> None:
    ranking = np.arange(len(digits.y_train))[::-1].copy()
    kept = np.flatnonzero(digits.y_train == 3)[:4]
    path = save_selection_preview(digits, ranking, kept, tmp_path / "preview.png")
    picture = np.asarray(Image.open(path))
    image = picture[:, LABEL_WIDTH:]  # right of the column of class names
    direct = class_grid(digits.x_train[kept[::-1]], digits.y_train[kept[::-1]], digits.num_classes)
    scale = image.shape[0] // direct.shape[0]
    assert scale >= 1 and image.shape[:2] == (direct.shape[0] * scale, direct.shape[1] * scale)
    assert np.array_equal(image[::scale, ::scale], direct)
    assert (picture[:, :LABEL_WIDTH] < 128).any()  # the labels are drawn (dark text on white)
    assert 8 * scale >= CELL_PIXELS  # each 8x8 digit at least CELL_PIXELS high
    assert (direct[: direct.shape[0] // 10 * 3] == 255).all()  # rows of classes 0-2 are empty
