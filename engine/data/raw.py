"""What every format loader returns, before validation, the split and statistics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class RawData:
    """Arrays as loaded from one source.

    Attributes:
        x: (N, C, H, W) float32 training images, scaled by the format's maximum.
        y: (N,) training labels, any numeric dtype until validated.
        classes: class names indexed by label, or None to name them by number.
        x_test: (M, C, H, W) float32 test images when the source has a test split.
        y_test: (M,) test labels, present exactly when ``x_test`` is.
    """

    x: np.ndarray
    y: np.ndarray
    classes: list[str] | None = None
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None


def to_float_images(x: np.ndarray, scale: float) -> np.ndarray:
    """Convert (N, C, H, W) integer pixels to contiguous float32 divided by ``scale``, in place."""
    out = x.astype(np.float32, order="C")
    out /= np.float32(scale)
    return out
