"""Small real datasets that ship inside installed packages, addressed as ``builtin:NAME``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine.data.raw import RawData
from engine.data.sources import Sources


def _digits() -> RawData:
    """scikit-learn's 1797 8x8 handwritten digits (UCI optdigits test set), pixel values 0..16."""
    from sklearn.datasets import load_digits  # imported lazily: sklearn is slow to import

    digits = load_digits()
    x = (digits.images[:, None] / 16.0).astype(np.float32)
    return RawData(x=x, y=digits.target.astype(np.int64), classes=[str(d) for d in range(10)],
                   sources=Sources.rows("digits", len(x)))


#: Name -> loader for every ``builtin:NAME`` source; add an entry to offer another dataset.
BUILTIN_DATASETS: dict[str, Callable[[], RawData]] = {"digits": _digits}
