"""NumPy ``.npz`` datasets: arrays ``x``, ``y`` and optionally ``x_test``, ``y_test``, ``classes``.

Each member's ``.npy`` header is read first and checked against the member's size and the
:class:`LoadLimits`, so a header that declares more than the limits allow is refused before a byte
of its data is read or its array allocated. Pixels keep their stored dtype (no float32 copy here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import BinaryIO, Literal

import numpy as np
from numpy.lib import format as npy

from engine.data.archive import Container
from engine.data.errors import DatasetError
from engine.data.limits import LoadLimits
from engine.data.raw import RawData
from engine.data.sources import Sources
from engine.data.validate import decode_class_names

_KEYS = ("x", "y", "x_test", "y_test", "classes")
_IMAGE_KEYS = ("x", "x_test")
_HEADER_READERS = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
_WRITE_HINT = "write the file with numpy.savez or numpy.savez_compressed"
_READ_CHUNK = 1 << 20

Layout = Literal["nhw", "nchw", "nhwc"]


@dataclass(frozen=True)
class _Header:
    shape: tuple[int, ...]
    fortran_order: bool
    dtype: np.dtype
    offset: int  # where the data starts in the member

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize  # Python ints: a hostile shape cannot wrap


def _read_header(f: BinaryIO, key: str, size: int) -> _Header:
    """Parse one member's ``.npy`` header and check it against the member's size, reading no data."""
    try:
        version = npy.read_magic(f)
        if version not in _HEADER_READERS:
            raise ValueError(f"format version {version[0]}.{version[1]} is not supported")
        shape, fortran_order, dtype = _HEADER_READERS[version](f)
    except ValueError as exc:
        raise DatasetError(f"array {key!r} is not a valid .npy array: {exc}", field=key, hint=_WRITE_HINT) from exc
    if dtype.hasobject:
        # Its data would be a pickle, which can run arbitrary code when loaded; it is never read.
        raise DatasetError(
            f"array {key!r} holds Python objects; pickled object arrays are not accepted",
            field=key,
            hint="store images and labels as numeric arrays and class names as a string array",
        )
    header = _Header(tuple(shape), fortran_order, dtype, f.tell())
    if header.nbytes != size - header.offset:
        raise DatasetError(
            f"array {key!r} declares {' x '.join(map(str, header.shape)) or 'one'} {dtype} values "
            f"({header.nbytes:,} bytes) but its member holds {size - header.offset:,} bytes of data",
            field=key, hint=f"the file is damaged; {_WRITE_HINT}")
    return header


def _read_array(f: BinaryIO, key: str, header: _Header) -> np.ndarray:
    """The member's data (the stream stands just past its header), read straight into its array.

    The array is allocated only now that its header has passed every check, and filled a bounded
    chunk at a time: reading the member whole would hold its bytes twice while they decompress.
    """
    try:
        flat = np.empty(math.prod(header.shape), header.dtype)
        target = memoryview(flat.view(np.uint8))
    except (TypeError, ValueError) as exc:  # e.g. a zero-size dtype
        raise DatasetError(f"array {key!r} cannot be read: {exc}", field=key, hint=_WRITE_HINT) from exc
    done = 0
    while done < header.nbytes:
        count = f.readinto(target[done:done + _READ_CHUNK])
        if not count:
            raise DatasetError(f"array {key!r} is cut off ({done:,} of {header.nbytes:,} bytes)", field=key,
                               hint=f"the file is damaged; {_WRITE_HINT}")
        done += count
    if header.fortran_order:
        return flat.reshape(header.shape[::-1]).transpose()
    return flat.reshape(header.shape)


def image_layout(shape: tuple[int, ...], field: str) -> Layout:
    """How stored images are laid out: (N,H,W), (N,C,H,W) or (N,H,W,C), with C in {1, 3}.

    A 4-D array is read as NCHW when axis 1 has size 1 or 3 (the layout :func:`save_npz` writes,
    which also wins when both axes qualify), otherwise as NHWC. Four-channel (RGBA) arrays are
    rejected rather than silently losing alpha, since the user may have meant something else.
    """
    if len(shape) == 3:
        return "nhw"
    if len(shape) == 4 and shape[1] in (1, 3):
        return "nchw"
    if len(shape) == 4 and shape[3] in (1, 3):
        return "nhwc"
    raise DatasetError(f"{field} has shape {shape}, which is not an image batch", field=field,
                       hint="expected (N, H, W), (N, H, W, C) or (N, C, H, W) with C = 1 or 3; "
                       "for RGBA drop the alpha channel (x[..., :3]) before saving")


def nchw_shape(shape: tuple[int, ...], layout: Layout) -> tuple[int, int, int, int]:
    if layout == "nhw":
        n, h, w = shape
        return n, 1, h, w
    n, a, b, c = shape
    return (n, a, b, c) if layout == "nchw" else (n, c, a, b)


def _check_image_header(header: _Header, field: str, limits: LoadLimits) -> tuple[int, int, int, int]:
    """The (N, C, H, W) a header declares, within the limits; raises before any pixel is read."""
    if header.dtype.kind not in "iuf":
        raise DatasetError(f"{field} has dtype {header.dtype}, not uint8 or float", field=field,
                           hint="store pixels as uint8 (0..255) or float32")
    n, c, h, w = shape = nchw_shape(header.shape, image_layout(header.shape, field))
    limits.check_samples(n, field)
    limits.check_side(h, w, field)
    limits.check_decoded(n * c * h * w, field)
    return shape


def _to_nchw(x: np.ndarray, field: str) -> np.ndarray:
    """A (N, C, H, W) view of stored pixels; integers must already be 0..255."""
    layout = image_layout(x.shape, field)
    if x.dtype.kind in "iu" and x.dtype != np.uint8 and x.size and (x.min() < 0 or x.max() > 255):
        raise DatasetError(f"{field} is an integer array with values outside 0..255", field=field,
                           hint="store 8-bit pixels as uint8, or scaled pixels as float32")
    if layout == "nhw":
        return x[:, None]
    return x if layout == "nchw" else x.transpose(0, 3, 1, 2)


def is_npz(container: Container) -> bool:
    """Whether the source is an ``.npz``: a zip whose members are all ``.npy`` arrays."""
    return container.kind == "zip" and bool(container.names) and all(n.endswith(".npy") for n in container.names)


def load_npz(container: Container, limits: LoadLimits) -> RawData:
    """Read an ``.npz`` (a zip of ``.npy`` members) without ever unpickling."""
    keys = [name.removesuffix(".npy") for name in container.names]
    present = [key for key in _KEYS if key in keys]
    if "x" not in present or "y" not in present:
        raise DatasetError(
            f"the .npz needs arrays 'x' and 'y'; it has {', '.join(sorted(keys)) or 'none'}",
            field="x" if "x" not in present else "y",
            hint="save with numpy.savez(path, x=images, y=labels)",
        )
    if ("x_test" in present) != ("y_test" in present):
        missing = "y_test" if "x_test" in present else "x_test"
        raise DatasetError("the .npz has only one of 'x_test' and 'y_test'", field=missing,
                           hint="provide both test arrays, or neither to hold out a test split")
    headers: dict[str, _Header] = {}
    for key in present:
        with container.open(f"{key}.npy") as f:
            headers[key] = _read_header(f, key, container.size(f"{key}.npy"))
    images = [_check_image_header(headers[key], key, limits) for key in _IMAGE_KEYS if key in headers]
    limits.check_samples(sum(shape[0] for shape in images), "x")
    limits.check_decoded(sum(math.prod(shape) for shape in images), "x")
    arrays: dict[str, np.ndarray] = {}
    for key in present:
        with container.open(f"{key}.npy") as f:
            f.seek(headers[key].offset)
            arrays[key] = _read_array(f, key, headers[key])
    classes = None
    if "classes" in arrays:
        names = arrays["classes"]
        if names.dtype.kind not in "US" or names.ndim != 1:
            raise DatasetError("'classes' must be a 1-D string array", field="classes",
                               hint="save classes=numpy.array(['cat', 'dog'])")
        classes = decode_class_names(names.tolist(), "the 'classes' array")
    return RawData(
        x=_to_nchw(arrays["x"], "x"),
        y=arrays["y"],
        classes=classes,
        x_test=_to_nchw(arrays["x_test"], "x_test") if "x_test" in arrays else None,
        y_test=arrays.get("y_test"),
        sources=Sources.rows("x", len(arrays["x"])),
        test_sources=Sources.rows("x_test", len(arrays["x_test"])) if "x_test" in arrays else None,
    )
