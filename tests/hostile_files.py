"""Broken and hostile dataset files, built in memory.

The engine tests load them from disk and the API tests upload them, so both prove that the same
inputs are refused: one at the loader, the other over HTTP with nothing stored.
"""

from __future__ import annotations

import io
import pickle
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims any size: it is never decoded, only its header is read."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


# A valid image folder (two classes of three 6x6 images) for a hostile member to join.
GOOD = {f"{c}/{i}.png": png(np.full((6, 6), i, np.uint8)) for c in ("a", "b") for i in range(3)}


def zip_bytes(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def zip_with_symlink(members: dict[str, bytes], name: str, target: str) -> bytes:
    """``members`` plus an entry ``name`` whose Unix mode marks it a symlink to ``target``."""
    buf = io.BytesIO(zip_bytes(members))
    with zipfile.ZipFile(buf, "a") as zf:
        info = zipfile.ZipInfo(name)
        info.external_attr = 0o120777 << 16
        zf.writestr(info, target)
    return buf.getvalue()


def zip_with_bad_crc(members: dict[str, bytes], name: str) -> bytes:
    """``members`` stored uncompressed, with one byte of member ``name`` changed so its CRC no longer matches."""
    raw = bytearray(zip_bytes(members, zipfile.ZIP_STORED))
    raw[raw.index(members[name]) + len(members[name]) // 2] ^= 1
    return bytes(raw)


def tar_bytes(members: dict[str, bytes | tarfile.TarInfo], mode: str = "w") -> bytes:
    """A tar (``mode="w:gz"`` for .tar.gz); a TarInfo member is added as it is (links, devices)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in members.items():
            if isinstance(data, tarfile.TarInfo):
                tf.addfile(data)
            else:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def special_tar_member(name: str, kind: bytes, linkname: str = "/etc/passwd") -> tarfile.TarInfo:
    """A tar entry of type ``kind`` (tarfile.SYMTYPE, LNKTYPE, CHRTYPE, FIFOTYPE...)."""
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def write_zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    path.write_bytes(zip_bytes(members, method))
    return path


def write_tar(path: Path, members: dict[str, bytes | tarfile.TarInfo], mode: str = "w") -> Path:
    path.write_bytes(tar_bytes(members, mode))
    return path


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # object arrays are pickled, as a hostile client's numpy would
    return buf.getvalue()


# Six 4x4 images in two classes, and label arrays that cannot go with them.
X = np.zeros((6, 4, 4), np.uint8)
Y = np.array([0, 0, 0, 1, 1, 1])
BAD_LABELS = {
    "wrong length": Y[:5],
    "float": Y + 0.5,
    "one-hot": np.eye(2)[Y],
    "negative": Y - 1,
    "out of range": np.array([0, 0, 0, 1, 1, 10**9]),
}


def non_finite_pixels(bad: float) -> np.ndarray:
    """Six float 1x3x3 images (to go with :data:`Y`) with ``bad`` in image 4."""
    x = np.zeros((6, 1, 3, 3), np.float32)
    x[4, 0, 1, 1] = bad
    return x


class RunsCode:
    """Unpickling this calls ``func(*args)``; the tests choose calls that leave a marker file behind,
    so the marker's absence proves nothing was unpickled."""

    def __init__(self, func: object, args: tuple[str, ...]) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[object, tuple[str, ...]]:
        return self.func, self.args


def creates_marker(marker: Path) -> RunsCode:
    return RunsCode(open, (str(marker), "w"))


CIFAR_BATCH_MEMBER = "cifar-10-batches-py/data_batch_1"


def cifar_batch(labels: object, data: np.ndarray | None = None) -> dict[str, bytes]:
    """Archive members of a CIFAR-10 python layout whose one batch holds ``labels`` (pickled, protocol 2)."""
    batch = {b"data": np.zeros((2, 12), np.uint8) if data is None else data, b"labels": labels}
    return {CIFAR_BATCH_MEMBER: pickle.dumps(batch, protocol=2)}
