"""What a source can be (a file or folder in a registered format, or ``builtin:NAME``) and recognising its format
from its content (magic bytes and member names), not its extension."""

from __future__ import annotations

import os
from pathlib import Path

from engine.data.archive import Container
from engine.data.builtin import BUILTIN_DATASETS
from engine.data.errors import DatasetError
from engine.data.formats import FORMATS, DatasetFormat, accepted_formats
from engine.registry import load

BUILTIN_PREFIX = "builtin:"


def accepted_sources() -> str:
    """Every source that ``load_dataset`` reads, as one phrase for help texts."""
    builtins = ", ".join(BUILTIN_PREFIX + key for key in sorted(BUILTIN_DATASETS))
    return f"{accepted_formats()} (several files zipped, tarred or in a folder), or {builtins}"


def existing_path(source: str | os.PathLike[str]) -> Path:
    """The source as a Path, raising a DatasetError if nothing is there."""
    path = Path(source)
    if not path.exists():
        raise DatasetError(f"{path} does not exist", field="file",
                           hint=f"give a dataset file or directory, or {BUILTIN_PREFIX}NAME")
    return path


def detect_container(container: Container) -> DatasetFormat:
    """The first registered format whose detector claims the container, else the one that takes the rest."""
    for fmt in FORMATS:
        if fmt.detect is not None and load(fmt.detect)(container):
            return fmt
    return next(fmt for fmt in FORMATS if fmt.detect is None)
