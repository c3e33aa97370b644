"""Files kept by key for reuse across runs: expert trajectories, recorded proxy runs.

The engine needs three operations; the service plugs its blob store (with per-tenant records and a
lease per key in its database) into the same interface, the CLI a local folder.

A stored file is checked before use: a store that finds its bytes are not what it recorded (a hash that
does not match) discards it and raises :class:`StoredFileDamaged`, and the caller computes the file
again instead of failing every later job that would reuse it.
"""

from __future__ import annotations

import fcntl
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol, TypeVar

from engine.atomic import atomic_path
from engine.data.hashing import hash_file
from engine.progress import Tracker

T = TypeVar("T")
# How often a job waiting for another trainer of the same key looks again (and checks its own cancellation).
WAIT_POLL_S = 0.5

Waiting = Callable[[str], None]
"""Called between two looks while another trainer holds a key, with a line saying who; raising stops the wait."""


class StoredFileDamaged(Exception):
    """A stored file is not what was recorded (hash, format or shapes); it has been discarded."""


class FileStore(Protocol):
    """Files by key.

    ``get`` copies the stored file to ``dest`` and says whether it existed (raising ``StoredFileDamaged``
    when it existed but was damaged); ``put`` stores one; ``claim`` holds ``key`` for one trainer at a
    time, so concurrent jobs that need the same file wait for the one computing it and then reuse it.
    """

    def get(self, key: str, dest: Path) -> bool: ...

    def put(self, key: str, src: Path) -> None: ...

    def claim(self, key: str, waiting: Waiting) -> AbstractContextManager[None]: ...


class LocalFileStore:
    """A FileStore in a local folder: ``<key>.safetensors`` with its sha256 in ``<key>.sha256`` beside it,
    and a ``<key>.lock`` file whose ``flock`` is the claim (released by the kernel if the holder dies)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str, suffix: str = ".safetensors") -> Path:
        if not key.replace("-", "").isalnum():
            raise ValueError(f"store key must be alphanumeric, got {key!r}")
        return self.root / f"{key}{suffix}"

    def get(self, key: str, dest: Path) -> bool:
        path, recorded = self._path(key), self._path(key, ".sha256")
        try:
            shutil.copyfile(path, dest)
            expected = recorded.read_text().strip()
        except FileNotFoundError:
            return False
        if hash_file(dest) != expected:
            path.unlink(missing_ok=True)
            recorded.unlink(missing_ok=True)
            raise StoredFileDamaged(f"the stored file {key} does not match its recorded sha256; discarded")
        return True

    def put(self, key: str, src: Path) -> None:
        with atomic_path(self._path(key)) as tmp:
            shutil.copyfile(src, tmp)
            # The hash first: a reader that finds the new file always finds its hash (an old file beside the
            # new hash reads as damaged, is discarded and computed again, never trusted).
            self._path(key, ".sha256").write_text(hash_file(tmp) + "\n")

    @contextmanager
    def claim(self, key: str, waiting: Waiting) -> Iterator[None]:
        with open(self._path(key, ".lock"), "a+") as lock:
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    waiting(f"another process is computing {key}")
                    time.sleep(WAIT_POLL_S)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def reuse_or_compute(
    store: FileStore,
    key: str,
    local: Path,
    load: Callable[[Path], T],
    compute: Callable[[Path], T],
    tracker: Tracker,
    stage: str,
) -> tuple[T, bool]:
    """``load(local)`` of the stored file for ``key``, else ``compute(local)`` (which writes ``local``)
    stored under ``key``; returns the value and whether it was reused.

    Under the store's claim on ``key``, so of several jobs that need the same file at once one computes
    it and the others wait (reporting it, and stopping if cancelled), then reuse it. A stored file that
    is damaged (its hash, or ``load``'s own checks, raising :class:`StoredFileDamaged`) is discarded with
    a warning naming it, and computed again.
    """

    told: list[str] = []

    def waiting(who: str) -> None:
        # Said once per holder (a long wait would otherwise add an event every poll); every poll still
        # checks cancellation, so a cancelled job stops waiting.
        if told[-1:] != [who]:
            told.append(who)
            tracker.report(stage, 0.0, f"waiting: {who}")
        tracker.check_cancel()

    with store.claim(key, waiting):
        try:
            if store.get(key, local):
                return load(local), True
        except StoredFileDamaged as exc:
            tracker.warn(stage, f"{exc}; computing it again")
        value = compute(local)
        store.put(key, local)
        return value, False
