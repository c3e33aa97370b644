"""Recognising a source's format from its content (magic bytes and member names), not its extension."""

from __future__ import annotations

import os
from pathlib import Path

from engine.data.archive import Container
from engine.data.cifar import find_cifar_layout
from engine.data.errors import DatasetError
from engine.data.idx import find_idx_members

BUILTIN_PREFIX = "builtin:"


def existing_path(source: str | os.PathLike[str]) -> Path:
    """The source as a Path, raising a DatasetError if nothing is there."""
    path = Path(source)
    if not path.exists():
        raise DatasetError(f"{path} does not exist", field="file",
                           hint=f"give a dataset file or directory, or {BUILTIN_PREFIX}NAME")
    return path


def detect_container(container: Container) -> str:
    """``npz`` for a zip of ``.npy`` arrays, ``idx`` or ``cifar`` by their file names, else ``imagefolder``."""
    if container.kind == "zip" and container.names and all(n.endswith(".npy") for n in container.names):
        return "npz"
    if find_idx_members(container.names):
        return "idx"
    if find_cifar_layout(container.names) is not None:
        return "cifar"
    return "imagefolder"
