"""CIFAR-10/100 "python version" batches, read with an unpickler that can only build numpy arrays.

The batches are pickles. Unpickling runs code only through callables that the pickle names as
globals, and every global is resolved by :meth:`pickle.Unpickler.find_class`. Ours returns just
numpy's array reconstructors and ``dtype`` (they build plain arrays from bytes and call nothing
else) plus a latin-1-only ``bytes`` encoder, and rejects any other name, so ``os.system``,
``builtins.eval``, ``subprocess`` and the like can never be reached. Everything else a pickle can
produce is inert data: dicts, lists, tuples, strings, numbers.
"""

from __future__ import annotations

import io
import math
import pickle
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from engine.data.archive import Container
from engine.data.errors import DatasetError
from engine.data.limits import LoadLimits
from engine.data.raw import RawData
from engine.data.sources import Sources
from engine.data.validate import decode_class_names

try:  # numpy >= 2 moved the reconstructors to numpy._core; pickles name either module
    from numpy._core import multiarray as _multiarray, numeric as _numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray, numeric as _numeric  # type: ignore[no-redef]


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """What Python 3 pickles ``bytes`` as below protocol 3; refuses every other codec."""
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"codec {encoding!r} is not allowed")
    return text.encode("latin1")


_ALLOWED: dict[tuple[str, str], Callable[..., Any]] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}
for _pkg in ("numpy.core", "numpy._core"):
    _ALLOWED[(f"{_pkg}.multiarray", "_reconstruct")] = _multiarray._reconstruct
    _ALLOWED[(f"{_pkg}.numeric", "_frombuffer")] = _numeric._frombuffer  # protocol 5


class _ArrayOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Callable[..., Any]:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refers to {module}.{name}, which is not allowed")
        return _ALLOWED[(module, name)]


def _unpickle(data: bytes, field: str) -> dict[str, Any]:
    """Load one batch dict, with str keys whether the pickle came from Python 2 or 3."""
    try:
        # latin1 is how numpy's Python 2 array pickles must be read in Python 3.
        obj = _ArrayOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()
    except Exception as exc:  # noqa: BLE001 - untrusted input can fail in any way; all mean "invalid"
        raise DatasetError(f"{field} is not an acceptable CIFAR batch: {exc}", field=field,
                           hint="upload the original CIFAR python batches; custom pickles are not accepted") from exc
    if not isinstance(obj, dict):
        raise DatasetError(f"{field} holds a {type(obj).__name__}, not a CIFAR batch dict", field=field,
                           hint="upload the original CIFAR python batches")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


@dataclass(frozen=True)
class CifarLayout:
    """Which members hold what: CIFAR-10 (5 train batches) or CIFAR-100 (one, fine labels)."""

    train: list[str]
    test: str | None
    meta: str | None
    label_key: str
    names_key: str


def find_cifar_layout(names: Iterable[str]) -> CifarLayout | None:
    """Recognise the CIFAR-10 or CIFAR-100 member names; None if neither is present."""
    by_base: dict[str, str] = {}
    for name in names:
        by_base.setdefault(name.rsplit("/", 1)[-1], name)
    batches = sorted((int(m[1]), n) for b, n in by_base.items() if (m := re.fullmatch(r"data_batch_(\d+)", b)))
    if batches:
        return CifarLayout([n for _, n in batches], by_base.get("test_batch"), by_base.get("batches.meta"),
                           "labels", "label_names")
    if "train" in by_base and "meta" in by_base:
        return CifarLayout([by_base["train"]], by_base.get("test"), by_base["meta"], "fine_labels",
                           "fine_label_names")
    return None


def is_cifar(container: Container) -> bool:
    """Whether the member names are CIFAR-10's or CIFAR-100's python batches."""
    return find_cifar_layout(container.names) is not None


def _images_labels(batch: dict[str, Any], label_key: str, field: str,
                   limits: LoadLimits) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3, S, S) uint8 images (a view of the batch's array) and labels from its row-major R, G, B planes."""
    data, labels = batch.get("data"), np.asarray(batch.get(label_key, []))
    side = math.isqrt(data.shape[1] // 3) if isinstance(data, np.ndarray) and data.ndim == 2 else 0
    if side == 0 or data.dtype != np.uint8 or data.shape[1] != 3 * side * side:
        raise DatasetError(f"{field} has no (N, 3*S*S) uint8 'data' array", field=field,
                           hint="upload the original CIFAR python batches")
    limits.check_side(side, side, field)
    if labels.dtype.kind not in "iu" or labels.shape != (len(data),):
        raise DatasetError(f"{field} has {len(data):,} images but its {label_key!r} are not "
                           f"{len(data):,} integers", field=field, hint="upload the original CIFAR python batches")
    return data.reshape(-1, 3, side, side), labels


def load_cifar(container: Container, limits: LoadLimits) -> RawData:
    """Concatenate the training batches; the test batch and class names are used when present.

    A batch's pixels are built from the bytes inside its pickle, so the member's (checked) size
    bounds them; the limits on the images are checked on the batches' shapes before they are joined.
    """
    layout = find_cifar_layout(container.names)
    if layout is None:
        raise DatasetError("no CIFAR batches found", field="file",
                           hint="upload cifar-10-python.tar.gz or cifar-100-python.tar.gz")
    wanted = [n for n in (*layout.train, layout.test, layout.meta) if n]
    batches = {name: _unpickle(data, container.field(name)) for name, data in container.read(wanted)}
    parts = [_images_labels(batches.pop(n), layout.label_key, container.field(n), limits)
             for n in (*layout.train, layout.test) if n]
    limits.check_samples(sum(len(y) for _, y in parts), "file")
    limits.check_decoded(sum(x.size for x, _ in parts), "file")
    classes = None
    if layout.meta:
        names = batches[layout.meta].get(layout.names_key)
        if not isinstance(names, list) or not all(isinstance(n, (str, bytes)) for n in names):
            raise DatasetError(f"{container.field(layout.meta)} has no {layout.names_key!r} list",
                               field=container.field(layout.meta), hint="upload the original meta file")
        classes = decode_class_names(names, container.field(layout.meta))
    train = parts[:len(layout.train)]
    x_test, y_test = parts[-1] if layout.test else (None, None)
    sources = Sources.concat([Sources.rows(PurePosixPath(n).name, len(y)) for n, (_, y) in zip(layout.train, train, strict=True)])
    return RawData(x=train[0][0] if len(train) == 1 else np.concatenate([x for x, _ in train]),
                   y=np.concatenate([y for _, y in train]), classes=classes, x_test=x_test, y_test=y_test,
                   sources=sources,
                   test_sources=Sources.rows(PurePosixPath(layout.test).name, len(y_test)) if layout.test else None)
