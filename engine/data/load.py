"""The public entry point: any supported source in, a validated :class:`ImageDataset` out."""

from __future__ import annotations

import os

import numpy as np

from engine.data.archive import Container
from engine.data.builtin import BUILTIN_DATASETS
from engine.data.cifar import load_cifar
from engine.data.dataset import ImageDataset, SplitInfo
from engine.data.detect import BUILTIN_PREFIX, detect_container, existing_path
from engine.data.errors import DatasetError
from engine.data.hashing import hash_arrays, hash_path
from engine.data.idx import load_idx
from engine.data.imagefolder import load_imagefolder
from engine.data.limits import LoadLimits
from engine.data.npz import load_npz
from engine.data.raw import RawData
from engine.data.split import stratified_holdout
from engine.data.validate import validate

_LOADERS = {"npz": load_npz, "imagefolder": load_imagefolder, "idx": load_idx, "cifar": load_cifar}
_ARCHIVE_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar", ".zip", ".npz")


def channel_stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of (N, C, H, W) images, accumulated in float64 over bounded chunks.

    The std is floored at 1e-6 so that normalising a constant channel never divides by zero.
    """
    n, c, h, w = x.shape
    step = max(1, (1 << 22) // (c * h * w))  # about 32 MiB of float64 per chunk
    total = np.zeros(c)
    for i in range(0, n, step):
        total += x[i:i + step].sum(axis=(0, 2, 3), dtype=np.float64)
    mean = total / max(n * h * w, 1)
    squares = np.zeros(c)
    for i in range(0, n, step):
        centred = x[i:i + step].astype(np.float64) - mean[:, None, None]
        squares += np.einsum("nchw,nchw->c", centred, centred)
    std = np.maximum(np.sqrt(squares / max(n * h * w, 1)), 1e-6)
    return tuple(mean.tolist()), tuple(std.tolist())


def _stem(path: os.PathLike[str]) -> str:
    name = os.path.basename(os.path.abspath(path))
    for suffix in _ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _load_builtin(key: str) -> tuple[RawData, str]:
    if key not in BUILTIN_DATASETS:
        raise DatasetError(f"there is no builtin dataset {key!r}", field="file",
                           hint=f"choose one of: {', '.join(BUILTIN_PREFIX + k for k in sorted(BUILTIN_DATASETS))}")
    raw = BUILTIN_DATASETS[key]()
    return raw, hash_arrays(BUILTIN_PREFIX + key, raw.x, raw.y)


def load_dataset(
    source: str | os.PathLike[str],
    *,
    limits: LoadLimits | None = None,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    name: str | None = None,
) -> ImageDataset:
    """Load, validate and describe a dataset from any supported source.

    Args:
        source: an ``.npz``; a zip/tar(.gz) of class folders, of the four MNIST IDX files or of
            CIFAR-10/100 python batches; a directory holding IDX files, CIFAR batches or class
            folders; or ``builtin:NAME`` (see :data:`BUILTIN_DATASETS`).
        limits: resource bounds; the defaults suit a single trusted machine.
        test_fraction: share of each class held out as test when the source has no test split.
        split_seed: seed of that held-out split.
        name: the dataset's display name; defaults to the file stem or builtin name.

    Raises:
        DatasetError: the source is unreadable, unsafe or invalid; ``field`` and ``hint`` say where and what to do.
        DatasetTooLarge: a :class:`LoadLimits` bound is exceeded.
    """
    limits = limits or LoadLimits()
    if isinstance(source, str) and source.startswith(BUILTIN_PREFIX):
        key = source.removeprefix(BUILTIN_PREFIX)
        raw, content_hash = _load_builtin(key)
        fmt, default_name = "builtin", key
    else:
        path = existing_path(source)
        with Container(path, limits) as container:
            fmt = detect_container(container)
            raw = _LOADERS[fmt](container, limits)
        content_hash, default_name = hash_path(path), _stem(path)
    data = validate(raw, limits)
    if data.x_test is not None and data.y_test is not None:
        x_train, y_train, x_test, y_test = data.x, data.y, data.x_test, data.y_test
        split = SplitInfo(source="provided")
    else:
        train_idx, test_idx = stratified_holdout(data.y, test_fraction, split_seed)
        x_train, y_train, x_test, y_test = data.x[train_idx], data.y[train_idx], data.x[test_idx], data.y[test_idx]
        split = SplitInfo(source="held_out", test_fraction=test_fraction, seed=split_seed)
    mean, std = channel_stats(x_train)
    return ImageDataset(
        x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, classes=list(data.classes or []),
        name=name or default_name, format=fmt, content_hash=content_hash, split=split, mean=mean, std=std,
    )
