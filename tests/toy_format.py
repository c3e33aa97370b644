"""A dataset format that exists only in the tests, to show that a new format is its module plus a registration:
a zip holding one ``.toy`` text file with a line per 4x4 grey image, its label and then its 16 pixels."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from engine.data.archive import Container
from engine.data.formats import DatasetFormat
from engine.data.limits import LoadLimits
from engine.data.raw import RawData

SIDE = 4
TOY = DatasetFormat("toy", "Toy pixel rows: one .toy text file, a line of label and 16 pixels per 4x4 image",
                    "a toy file of pixel rows", "tests.toy_format:is_toy", "tests.toy_format:load_toy")


def is_toy(container: Container) -> bool:
    return len(container.names) == 1 and container.names[0].endswith(".toy")


def load_toy(container: Container, limits: LoadLimits) -> RawData:
    ((_, data),) = container.read(container.names)
    rows = np.array([line.split() for line in data.decode().splitlines()], dtype=np.int64)
    return RawData(x=rows[:, 1:].astype(np.uint8).reshape(-1, 1, SIDE, SIDE), y=rows[:, 0])


def write_toy(path: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """``images`` (N, 4, 4) uint8 and their labels as a toy file zipped at ``path``."""
    lines = [" ".join(str(v) for v in [label, *image.ravel()]) for image, label in zip(images, labels, strict=True)]
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("pixels.toy", "\n".join(lines))
    return path
