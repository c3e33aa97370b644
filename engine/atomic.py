"""Files that appear whole or not at all: a reader (another worker, a resumed job, the API) never sees half a
checkpoint, cache entry or artifact, and a failed write leaves nothing behind."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A fresh temporary file beside ``path`` to write; it replaces ``path`` when the block ends, and is
    removed if the block raises.

    Beside ``path`` because ``os.replace`` is atomic only within one file system; a unique name because two
    writers of one path must not share a temporary; ending in ``.tmp`` so that folder listings by suffix
    (the decoded cache's eviction) never take it for a finished file. Writers that add a suffix of their own
    to a name without it (``np.savez``) are given the open file instead (``write_atomic``).
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> Path:
    """``path`` written by ``write(file)`` through ``atomic_path``."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)
    return path
