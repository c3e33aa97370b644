"""What every format loader returns, before validation, the split and statistics.

Loaders keep pixels in the dtype they are stored in (uint8 stays one byte per pixel, often a view
of the file's own bytes), so that checking a dataset costs no more memory than its file;
:func:`to_float_images` makes the float32 copy only when a job needs the pixels.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from engine.data.sources import Sources

# About 1 MiB of float32 (2 MiB of float64) per chunk of pixels processed at a time.
_CHUNK_VALUES = 1 << 18


@dataclass
class RawData:
    """Arrays as loaded from one source.

    Attributes:
        x: (N, C, H, W) training images as stored: integer pixels in 0..255 (uint8 for every
            format but an .npz) or float pixels already on the scale the engine uses.
        y: (N,) training labels, any numeric dtype until validated.
        classes: class names indexed by label, or None to name them by number.
        x_test: (M, C, H, W) test images, like ``x``, when the source has a test split.
        y_test: (M,) test labels, present exactly when ``x_test`` is.
        sources, test_sources: where each training (test) sample came from (:mod:`engine.data.sources`).
    """

    x: np.ndarray
    y: np.ndarray
    classes: list[str] | None = None
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    sources: Sources | None = None
    test_sources: Sources | None = None


def to_float_images(x: np.ndarray) -> np.ndarray:
    """Stored (N, C, H, W) pixels as contiguous float32: integers divided by 255, floats as they are."""
    with np.errstate(over="ignore"):  # floats beyond float32 become inf, which validation reports
        out = x.astype(np.float32, order="C")
    if x.dtype.kind in "iu":
        out /= np.float32(255)
    return out


def float_chunks(x: np.ndarray, index: np.ndarray | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, to_float_images(images[start:start + k]))`` over ``x`` (or ``x[index]``), a bounded chunk at a time.

    Computing on these gives exactly the values a whole :func:`to_float_images` copy would, without it.
    """
    n = len(x) if index is None else len(index)
    step = max(1, _CHUNK_VALUES // max(1, math.prod(x.shape[1:])))
    for start in range(0, n, step):
        part = x[start:start + step] if index is None else x[index[start:start + step]]
        yield start, to_float_images(part)
