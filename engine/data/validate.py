"""Checks shared by every format: shapes, labels, classes, pixel values and size limits."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from engine.data.errors import DatasetError
from engine.data.limits import LoadLimits
from engine.data.names import MAX_CLASS_NAME_LENGTH, name_problem
from engine.data.raw import RawData, float_chunks


def _check_images(x: np.ndarray, field: str, limits: LoadLimits) -> None:
    if x.ndim != 4:
        raise DatasetError(f"{field} has {x.ndim} dimensions; images must be (N, C, H, W)", field=field,
                           hint="store images as (N, H, W), (N, H, W, C) or (N, C, H, W)")
    _, c, h, w = x.shape
    if c == 0 or h == 0 or w == 0:
        raise DatasetError(f"{field} holds zero-size images (shape {x.shape})", field=field,
                           hint="every image needs at least one pixel")
    if c not in (1, 3):
        raise DatasetError(f"{field} has {c} channels; only 1 (grey) or 3 (RGB) are supported", field=field,
                           hint="convert the images to greyscale or RGB")
    limits.check_side(h, w, field)
    if x.dtype.kind != "f":
        return  # integer pixels are always finite
    # Checked on the float32 values training will see (a float64 1e300 becomes inf there), a chunk at a time
    # so that checking never needs a float32 copy of the whole array.
    bad = [start + int(i) for start, chunk in float_chunks(x)
           for i in np.flatnonzero(~np.isfinite(chunk).all(axis=(1, 2, 3)))]
    if bad:
        raise DatasetError(f"{field} has NaN or infinite pixels in {len(bad):,} images (first: index {bad[0]})",
                           field=field, hint="replace or drop the broken images")


def _check_labels(y: np.ndarray | None, count: int, field: str, images_field: str) -> np.ndarray:
    """Return labels as (N,) int64, checking their count, shape and integrality."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DatasetError(f"{field} has shape {y.shape}; labels must be one class index per image", field=field,
                           hint="for one-hot labels store y.argmax(axis=1)")
    if len(y) != count:
        raise DatasetError(f"{images_field} has {count:,} images but {field} has {len(y):,} labels", field=field,
                           hint="give exactly one label per image")
    if y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all():
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise DatasetError(f"{field} has non-integer labels (dtype {y.dtype})", field=field,
                           hint="labels must be integer class indices 0..K-1")
    return y.astype(np.int64)


def decode_class_names(names: list[str | bytes], field: str) -> list[str]:
    """Class names as text; bytes must be UTF-8 (``field`` names where they come from)."""
    try:
        return [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{field} has a class name that is not UTF-8 text: {exc}", field="classes",
                           hint="store class names as UTF-8 (or str) text") from exc


def _check_class_names(classes: list[str]) -> None:
    for index, name in enumerate(classes):
        if problem := name_problem(name, MAX_CLASS_NAME_LENGTH):
            raise DatasetError(f"class name {name[:40]!r}{'...' if len(name) > 40 else ''} (class {index}) {problem}",
                               field="classes",
                               hint=f"rename the class (the 'classes' array, the class folder or the CIFAR meta file): "
                               f"1 to {MAX_CLASS_NAME_LENGTH} characters without control characters")


def validate(raw: RawData, limits: LoadLimits) -> RawData:
    """Check a loader's output; return it with int64 labels and class names filled in.

    Raises:
        DatasetError: with ``field`` naming the offending array (``x``, ``y``, ``x_test``, ``y_test``,
            ``classes``) and a hint on how to fix it.
        DatasetTooLarge: when a :class:`LoadLimits` bound is exceeded.
    """
    _check_images(raw.x, "x", limits)
    if len(raw.x) == 0:
        raise DatasetError("the dataset has no training images", field="x",
                           hint="upload at least two classes of images")
    y = _check_labels(raw.y, len(raw.x), "y", "x")
    splits = [(y, "y")]
    y_test = None
    if raw.x_test is not None:
        _check_images(raw.x_test, "x_test", limits)
        if raw.x_test.shape[1:] != raw.x.shape[1:]:
            raise DatasetError(f"test images are {raw.x_test.shape[1:]} (C, H, W) but training images are "
                               f"{raw.x.shape[1:]}", field="x_test", hint="give both splits the same image size")
        y_test = _check_labels(raw.y_test, len(raw.x_test), "y_test", "x_test")
        splits.append((y_test, "y_test"))
    x_test_size = 0 if raw.x_test is None else raw.x_test.size
    limits.check_samples(len(y) + (0 if y_test is None else len(y_test)), "x")
    limits.check_decoded(raw.x.size + x_test_size, "x")
    num_classes = len(raw.classes) if raw.classes is not None else int(max(v.max(initial=0) for v, _ in splits)) + 1
    if raw.classes is None and num_classes > len(y):  # checked before a huge label allocates names
        raise DatasetError(f"labels go up to {num_classes - 1} but there are only {len(y):,} training images, "
                           "so some classes have none", field="y", hint="labels must be class indices 0..K-1")
    classes = raw.classes if raw.classes is not None else [str(i) for i in range(num_classes)]
    _check_class_names(classes)
    if len(set(classes)) != len(classes):
        raise DatasetError("class names are not unique", field="classes", hint="give every class its own name")
    for labels, field in splits:
        if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            bad = labels[(labels < 0) | (labels >= num_classes)][0]
            raise DatasetError(f"{field} contains label {bad}, outside 0..{num_classes - 1}", field=field,
                               hint="labels must index the class list; renumber them 0..K-1")
    if num_classes < 2:
        raise DatasetError(f"the dataset has only {num_classes} class(es); classification needs at least 2", field="y",
                           hint="add images of at least one more class")
    counts = np.bincount(y, minlength=num_classes)
    if (counts == 0).any():
        empty = [classes[i] for i in np.flatnonzero(counts == 0)]
        raise DatasetError(f"class {empty[0]!r} has no training samples"
                           + (f" ({len(empty)} empty classes in all)" if len(empty) > 1 else ""),
                           field="y", hint="add training images for it, or remove it from the classes")
    return replace(raw, y=y, classes=list(classes), y_test=y_test)
