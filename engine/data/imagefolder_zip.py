"""Writing samples as an ImageFolder zip (``train/<class>/<file>``, ``test/<class>/<file>``): the kept subset of a
prune job and the synthetic images of a distill job, as folders a user can open, train on with any loader, or
upload again (Condense's own ``imagefolder`` format reads it back, test split included).

A sample that was one image file in the upload is written with its original bytes (the same PNG or JPEG, not a
re-encoding); a sample stored as an array row is encoded as PNG from its pixels, which the engine holds on the
[0, 1] scale (values outside it are clipped).
"""

from __future__ import annotations

import base64
import io
import os
import re
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from engine.atomic import atomic_path
from engine.data.archive import Container
from engine.data.dataset import ImageDataset
from engine.data.limits import LoadLimits

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def png_bytes(pixels: np.ndarray) -> bytes:
    """One (C, H, W) image on the [0, 1] scale as PNG: grey for one channel, RGB for three (the first three
    where there are more)."""
    x = np.rint(np.clip(pixels, 0.0, 1.0) * 255).astype(np.uint8)
    image = Image.fromarray(x[0], "L") if x.shape[0] == 1 else Image.fromarray(x[:3].transpose(1, 2, 0), "RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def png_data_url(pixels: np.ndarray) -> str:
    """:func:`png_bytes` as a ``data:`` URL, for JSON that a web page shows as an image."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(pixels)).decode()


def _safe(part: str) -> str:
    return _UNSAFE.sub("_", part).strip("_") or "_"


def member_name(split: str, class_name: str, source: str, taken: set[str]) -> str:
    """``split/class/file`` for a sample: the source's file name where it was a file, a name made from its id
    (``x[17]`` -> ``x_17.png``) where it was a row; the whole id where that name is already taken."""
    base = PurePosixPath(source).name
    name = _safe(base) if "[" not in base else _safe(base) + ".png"
    folder = f"{split}/{_safe(class_name)}"
    if f"{folder}/{name}" in taken:
        stem = _safe(source)
        name = stem if "[" not in base else stem + ".png"
    path = f"{folder}/{name}"
    taken.add(path)
    return path


def _split_members(dataset: ImageDataset, split: str, indices: np.ndarray) -> Iterator[tuple[int, str, str]]:
    """(index, class name, source id) of each sample of ``split`` in ``indices``."""
    labels = dataset.y_train if split == "train" else dataset.y_test
    sources = dataset.train_sources if split == "train" else dataset.test_sources
    names = sources.names(indices) if sources is not None else [f"{split}[{i}]" for i in indices.tolist()]
    for i, source in zip(indices.tolist(), names, strict=True):
        yield i, dataset.classes[int(labels[i])], source


def write_dataset_zip(path: Path, dataset: ImageDataset, train_indices: np.ndarray,
                      origin: str | os.PathLike[str] | None) -> Path:
    """The training samples ``train_indices`` and the test split of ``dataset`` as an ImageFolder zip; ``origin`` is
    the upload the dataset was read from, whose image members are copied as they are."""
    plan: list[tuple[str, np.ndarray, str | None]] = []  # (member name, pixels, the upload's member to copy)
    taken: set[str] = set()
    for split, indices in (("train", np.asarray(train_indices, np.int64)), ("test", np.arange(len(dataset.y_test)))):
        sources = dataset.train_sources if split == "train" else dataset.test_sources
        images = dataset.x_train if split == "train" else dataset.x_test
        for i, class_name, source in _split_members(dataset, split, indices):
            copy = origin is not None and sources is not None and sources.is_member(i)
            plan.append((member_name(split, class_name, source, taken), images[i], source if copy else None))
    originals = _read_members(origin, [source for _, _, source in plan if source is not None])
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
        for name, pixels, source in plan:
            # PNG and JPEG are compressed already: stored as they are
            archive.writestr(name, originals[source] if source is not None else png_bytes(pixels))
    return path


def _read_members(origin: str | os.PathLike[str] | None, names: Sequence[str]) -> dict[str, bytes]:
    if origin is None or not names:
        return {}
    with Container(Path(origin), LoadLimits()) as container:
        return dict(container.read(set(names)))


def write_images_zip(path: Path, pixels: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> Path:
    """Images made in code (a distilled set) as ``<class>/<class>_<k>.png``, one folder per class."""
    counts: dict[int, int] = {}
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
        for x, label in zip(pixels, labels.tolist(), strict=True):
            k = counts[label] = counts.get(label, -1) + 1
            name = _safe(classes[label])
            archive.writestr(f"{name}/{name}_{k:04d}.png", png_bytes(x))
    return path
