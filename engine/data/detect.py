"""Recognising a source's format from its content (magic bytes and member names), not its extension."""

from __future__ import annotations

import os
from pathlib import Path

from engine.data.archive import Container
from engine.data.cifar import find_cifar_layout
from engine.data.errors import DatasetError
from engine.data.idx import find_idx_members
from engine.data.limits import LoadLimits

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


def detect_format(source: str | os.PathLike[str], *, limits: LoadLimits | None = None) -> str:
    """The format of a source: ``npz``, ``imagefolder``, ``idx``, ``cifar`` or ``builtin``.

    Detection reads the archive's directory (and runs its safety checks), so a ``.npz`` that is
    really a zip of PNGs is an ``imagefolder`` and a misnamed file is still recognised.

    Raises:
        DatasetError: the path does not exist, or is neither a zip, a tar nor a directory.
    """
    if isinstance(source, str) and source.startswith(BUILTIN_PREFIX):
        return "builtin"
    with Container(existing_path(source), limits or LoadLimits()) as container:
        return detect_container(container)
