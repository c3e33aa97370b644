"""Files kept by key for reuse across runs: expert trajectories, recorded proxy runs.

The engine needs only two operations; the service plugs its blob store (with per-tenant records)
into the same interface, the CLI a local folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Protocol


class FileStore(Protocol):
    """Files by key. ``get`` copies the stored file to ``dest`` and says whether it existed."""

    def get(self, key: str, dest: Path) -> bool: ...

    def put(self, key: str, src: Path) -> None: ...


class LocalFileStore:
    """A FileStore in a local folder (one ``<key>.safetensors`` per file)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if not key.replace("-", "").isalnum():
            raise ValueError(f"store key must be alphanumeric, got {key!r}")
        return self.root / f"{key}.safetensors"

    def get(self, key: str, dest: Path) -> bool:
        path = self._path(key)
        if not path.exists():
            return False
        shutil.copyfile(path, dest)
        return True

    def put(self, key: str, src: Path) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".tmp")
        os.close(fd)
        shutil.copyfile(src, tmp)
        os.replace(tmp, self._path(key))
