"""Content hashes that identify a source, so identical uploads can share stored results."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

_CHUNK = 1 << 20


def hash_file(path: Path) -> str:
    """sha256 of a file's bytes, read in chunks so memory stays flat."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def hash_path(path: Path) -> str:
    """:func:`hash_file` for a file; for a directory, sha256 over its sorted (relative name, file hash) pairs."""
    if not path.is_dir():
        return hash_file(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{hash_file(file)}\n".encode())
    return digest.hexdigest()


def hash_arrays(name: str, *arrays: np.ndarray) -> str:
    """A stable hash of a generated dataset: its name plus each array's dtype, shape and bytes."""
    digest = hashlib.sha256(name.encode())
    for arr in arrays:
        arr = np.ascontiguousarray(arr)
        digest.update(f"\0{arr.dtype.str}{arr.shape}".encode())
        digest.update(arr.data)
    return digest.hexdigest()
