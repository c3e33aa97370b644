"""The public entry points: any supported source in, a validated :class:`ImageDataset` (or only its
:class:`DatasetSummary`) out."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from engine.data.archive import Container
from engine.data.builtin import BUILTIN_DATASETS
from engine.data.dataset import DatasetSummary, ImageDataset, SplitInfo
from engine.data.detect import BUILTIN_PREFIX, detect_container, existing_path
from engine.data.errors import DatasetError
from engine.data.hashing import hash_arrays, hash_path
from engine.data.limits import LoadLimits
from engine.data.raw import RawData, float_chunks, to_float_images
from engine.data.sources import Sources
from engine.data.split import TEST_FRACTION, stratified_holdout
from engine.data.validate import validate
from engine.registry import load

_ARCHIVE_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar", ".zip", ".npz")


def channel_stats(x: np.ndarray, index: np.ndarray | None = None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of stored (N, C, H, W) images (or of ``x[index]``) as float32 pixels.

    Accumulated in float64 over bounded float32 chunks, so the result is the same bit for bit
    whether or not the caller holds a float32 copy. The std is floored at 1e-6 so that normalising
    a constant channel never divides by zero.
    """
    n = len(x) if index is None else len(index)
    c, h, w = x.shape[1:]
    total = np.zeros(c)
    for _, chunk in float_chunks(x, index):
        total += chunk.sum(axis=(0, 2, 3), dtype=np.float64)
    mean = total / max(n * h * w, 1)
    squares = np.zeros(c)
    for _, chunk in float_chunks(x, index):
        centred = chunk.astype(np.float64)
        centred -= mean[:, None, None]
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


@dataclass(frozen=True)
class _Checked:
    """A source read and validated, pixels as stored, with the split that every use of it shares."""

    data: RawData
    format: str
    content_hash: str
    name: str
    train_idx: np.ndarray | None  # the held-out split's indices; None when the source has a test split
    test_idx: np.ndarray | None
    split: SplitInfo
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def parts(self, whole: np.ndarray, test: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The (train, test) parts of an array of the source's training samples and its test counterpart."""
        if self.train_idx is None or self.test_idx is None:
            assert test is not None
            return whole, test
        return whole[self.train_idx], whole[self.test_idx]

    def source_parts(self) -> tuple[Sources, Sources]:
        """The (train, test) source ids, split as the samples are; a loader that names none gets rows of the
        source's stem."""
        data = self.data
        whole = data.sources or Sources.rows(self.name, len(data.y))
        if self.train_idx is None or self.test_idx is None:
            test = data.test_sources or Sources.rows(f"{self.name} test", len(data.y_test))
            return whole, test
        return whole.take(self.train_idx), whole.take(self.test_idx)


def _check(source: str | os.PathLike[str], limits: LoadLimits | None, test_fraction: float, split_seed: int,
           name: str | None) -> _Checked:
    limits = limits or LoadLimits()
    if isinstance(source, str) and source.startswith(BUILTIN_PREFIX):
        key = source.removeprefix(BUILTIN_PREFIX)
        raw, content_hash = _load_builtin(key)
        fmt, default_name = "builtin", key
    else:
        path = existing_path(source)
        with Container(path, limits) as container:
            detected = detect_container(container)
            raw = load(detected.loader)(container, limits)
        fmt = detected.name
        content_hash, default_name = hash_path(path), _stem(path)
    data = validate(raw, limits)
    if data.x_test is not None and data.y_test is not None:
        train_idx = test_idx = None
        split = SplitInfo(source="provided")
    else:
        train_idx, test_idx = stratified_holdout(data.y, test_fraction, split_seed)
        split = SplitInfo(source="held_out", test_fraction=test_fraction, seed=split_seed)
    mean, std = channel_stats(data.x, train_idx)
    return _Checked(data, fmt, content_hash, name or default_name, train_idx, test_idx, split, mean, std)


def load_dataset(
    source: str | os.PathLike[str],
    *,
    limits: LoadLimits | None = None,
    test_fraction: float = TEST_FRACTION,
    split_seed: int = 0,
    name: str | None = None,
) -> ImageDataset:
    """Load, validate and describe a dataset from any supported source.

    Args:
        source: a file, archive or directory in one of the formats of
            :data:`~engine.data.formats.FORMATS`, or ``builtin:NAME`` (see :data:`BUILTIN_DATASETS`).
        limits: resource bounds; the defaults suit a single trusted machine.
        test_fraction: share of each class held out as test when the source has no test split.
        split_seed: seed of that held-out split.
        name: the dataset's display name; defaults to the file stem or builtin name.

    Raises:
        DatasetError: the source is unreadable, unsafe or invalid; ``field`` and ``hint`` say where and what to do.
        DatasetTooLarge: a :class:`LoadLimits` bound is exceeded.
    """
    checked = _check(source, limits, test_fraction, split_seed, name)
    data = checked.data
    # Split while the pixels are still as stored (often uint8), then make each part float32.
    x_train, x_test = checked.parts(data.x, data.x_test)
    y_train, y_test = checked.parts(data.y, data.y_test)
    train_sources, test_sources = checked.source_parts()
    return ImageDataset(
        x_train=to_float_images(x_train), y_train=y_train, x_test=to_float_images(x_test), y_test=y_test,
        classes=list(data.classes or []), name=checked.name, format=checked.format,
        content_hash=checked.content_hash, split=checked.split, mean=checked.mean, std=checked.std,
        train_sources=train_sources, test_sources=test_sources,
    )


def inspect_dataset(
    source: str | os.PathLike[str],
    *,
    limits: LoadLimits | None = None,
    test_fraction: float = TEST_FRACTION,
    split_seed: int = 0,
    name: str | None = None,
) -> DatasetSummary:
    """Every check of :func:`load_dataset` (same arguments, same errors) and the summary of what it would load.

    The pixels stay as stored (uint8 images take one byte each, viewing the file's own bytes where
    it can) and no float32 or normalised copy is made, so validating an upload costs about the
    memory of its decompressed contents. ``inspect_dataset(...).to_dict()`` equals the
    :meth:`~ImageDataset.summary` of ``load_dataset`` with the same arguments, which is what jobs use.
    """
    checked = _check(source, limits, test_fraction, split_seed, name)
    data, classes = checked.data, list(checked.data.classes or [])
    y_train, y_test = checked.parts(data.y, data.y_test)
    c, h, w = data.x.shape[1:]
    return DatasetSummary(
        name=checked.name, format=checked.format, content_hash=checked.content_hash,
        num_train=len(y_train), num_test=len(y_test), classes=classes,
        class_counts=np.bincount(y_train, minlength=len(classes)).tolist(),
        test_class_counts=np.bincount(y_test, minlength=len(classes)).tolist(),
        image_shape=(int(c), int(h), int(w)), split=checked.split, mean=checked.mean, std=checked.std,
    )


def preview_samples(
    source: str | os.PathLike[str],
    *,
    per_class: int = 8,
    limits: LoadLimits | None = None,
    test_fraction: float = TEST_FRACTION,
    split_seed: int = 0,
    name: str | None = None,
) -> list[tuple[str, str, np.ndarray]]:
    """The first ``per_class`` training samples of each class as ``(class name, source id, pixels)``, pixels
    (C, H, W) on the [0, 1] scale; read like :func:`inspect_dataset` (no float32 copy of the whole set)."""
    checked = _check(source, limits, test_fraction, split_seed, name)
    data, classes = checked.data, list(checked.data.classes or [])
    y_train, _ = checked.parts(data.y, data.y_test)
    sources, _ = checked.source_parts()
    out = []
    for c, class_name in enumerate(classes):
        picked = np.flatnonzero(y_train == c)[:per_class]
        # Rows of the source as stored (the training split's indices into it where a test split was held out).
        rows = picked if checked.train_idx is None else checked.train_idx[picked]
        images = to_float_images(data.x[rows])
        out += [(class_name, source, image) for source, image in zip(sources.names(picked), images, strict=True)]
    return out
