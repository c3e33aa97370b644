"""NumPy ``.npz`` datasets: arrays ``x``, ``y`` and optionally ``x_test``, ``y_test``, ``classes``."""

from __future__ import annotations

import io

import numpy as np

from engine.data.archive import Container
from engine.data.errors import DatasetError
from engine.data.limits import LoadLimits
from engine.data.raw import RawData, to_float_images

_KEYS = ("x", "y", "x_test", "y_test", "classes")


def _load_array(data: bytes, key: str) -> np.ndarray:
    try:
        # allow_pickle=False: a pickled object array could run arbitrary code when loaded.
        return np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DatasetError(
                f"array {key!r} holds Python objects; pickled object arrays are not accepted",
                field=key,
                hint="store images and labels as numeric arrays and class names as a string array",
            ) from exc
        raise DatasetError(f"array {key!r} is not a valid .npy array: {exc}", field=key,
                           hint="write the file with numpy.savez or numpy.savez_compressed") from exc


def images_to_nchw(x: np.ndarray, field: str, limits: LoadLimits) -> np.ndarray:
    """Convert (N,H,W), (N,H,W,C) or (N,C,H,W) pixels with C in {1, 3} to scaled float32 NCHW.

    A 4-D array is read as NCHW when axis 1 has size 1 or 3 (the layout :func:`save_npz` writes,
    which also wins when both axes qualify), otherwise as NHWC. Four-channel (RGBA) arrays are
    rejected rather than silently losing alpha, since the user may have meant something else.
    """
    layout_hint = ("expected (N, H, W), (N, H, W, C) or (N, C, H, W) with C = 1 or 3; "
                   "for RGBA drop the alpha channel (x[..., :3]) before saving")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[1] in (1, 3):
        pass
    elif x.ndim == 4 and x.shape[3] in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    else:
        raise DatasetError(f"{field} has shape {x.shape}, which is not an image batch", field=field,
                           hint=layout_hint)
    limits.check_samples(len(x), field)
    limits.check_decoded(x.size, field)
    if x.dtype == np.uint8:
        return to_float_images(x, 255.0)
    if x.dtype.kind in "iu":
        if x.size and (x.min() < 0 or x.max() > 255):
            raise DatasetError(f"{field} is an integer array with values outside 0..255", field=field,
                               hint="store 8-bit pixels as uint8, or scaled pixels as float32")
        return to_float_images(x, 255.0)
    if x.dtype.kind == "f":
        return x.astype(np.float32, order="C")
    raise DatasetError(f"{field} has dtype {x.dtype}, not uint8 or float", field=field,
                       hint="store pixels as uint8 (0..255) or float32")


def load_npz(container: Container, limits: LoadLimits) -> RawData:
    """Read an ``.npz`` (a zip of ``.npy`` members) without ever unpickling."""
    keys = [name.removesuffix(".npy") for name in container.names]
    arrays = {name.removesuffix(".npy"): data
              for name, data in container.read(f"{key}.npy" for key in keys if key in _KEYS)}
    if "x" not in arrays or "y" not in arrays:
        raise DatasetError(
            f"the .npz needs arrays 'x' and 'y'; it has {', '.join(sorted(keys)) or 'none'}",
            field="x" if "x" not in arrays else "y",
            hint="save with numpy.savez(path, x=images, y=labels)",
        )
    if ("x_test" in arrays) != ("y_test" in arrays):
        missing = "y_test" if "x_test" in arrays else "x_test"
        raise DatasetError("the .npz has only one of 'x_test' and 'y_test'", field=missing,
                           hint="provide both test arrays, or neither to hold out a test split")
    loaded = {key: _load_array(arrays.pop(key), key) for key in _KEYS if key in arrays}
    classes = None
    if "classes" in loaded:
        names = loaded["classes"]
        if names.dtype.kind not in "US" or names.ndim != 1:
            raise DatasetError("'classes' must be a 1-D string array", field="classes",
                               hint="save classes=numpy.array(['cat', 'dog'])")
        classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names.tolist()]
    return RawData(
        x=images_to_nchw(loaded["x"], "x", limits),
        y=loaded["y"],
        classes=classes,
        x_test=images_to_nchw(loaded["x_test"], "x_test", limits) if "x_test" in loaded else None,
        y_test=loaded.get("y_test"),
    )
