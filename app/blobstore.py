"""Content-addressed blob storage behind a narrow interface, so an S3 store can replace the local one."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

HASH_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Blob:
    key: str
    sha256: str
    size: int


def copy_and_hash(src: BinaryIO, out: BinaryIO | None = None) -> str:
    """sha256 of a stream read to its end in chunks, copied to ``out`` on the way when given (one pass)."""
    digest = hashlib.sha256()
    while chunk := src.read(HASH_CHUNK):
        digest.update(chunk)
        if out is not None:
            out.write(chunk)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    with path.open("rb") as f:
        return copy_and_hash(f)


class BlobStore(Protocol):
    def key_for(self, sha256: str, suffix: str = "") -> str: ...
    def put_file(self, src: Path, *, suffix: str = "", sha256: str | None = None, move: bool = False) -> Blob: ...
    def open(self, key: str) -> BinaryIO: ...
    def path_for(self, key: str) -> Path: ...
    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int: ...
    def delete(self, key: str) -> None: ...
    def withdraw(self, key: str) -> str | None: ...
    def restore(self, key: str, token: str) -> None: ...
    def purge(self, token: str) -> None: ...
    def staging(self) -> AbstractContextManager[Path]: ...
    def ping(self) -> None: ...


class LocalBlobStore:
    """Blobs under ``root/sha256/ab/cd/<hex><suffix>``.

    Every write lands by ``os.replace``, so a reader never sees half a file.

    The suffix (``.npz``, ``.tar.gz``...) is kept because loaders detect a format from the file name.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / ".tmp"
        self._withdrawn = root / ".withdrawn"

    def key_for(self, sha256: str, suffix: str = "") -> str:
        return f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}{suffix}"

    def path_for(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"blob key {key!r} escapes the store")
        return path

    def put_file(self, src: Path, *, suffix: str = "", sha256: str | None = None, move: bool = False) -> Blob:
        """Store ``src`` under its content hash; ``move`` consumes it (a rename when on the same filesystem)."""
        digest = sha256 or sha256_file(src)
        key = self.key_for(digest, suffix)
        final = self.path_for(key)
        size = src.stat().st_size
        if final.exists():
            if move:
                src.unlink()
            return Blob(key, digest, size)
        final.parent.mkdir(parents=True, exist_ok=True)
        if move:
            try:
                os.replace(src, final)
                return Blob(key, digest, size)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
        self._tmp.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp / f"{uuid.uuid4().hex}.part"
        try:
            shutil.copyfile(src, tmp)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        if move:
            src.unlink()
        return Blob(key, digest, size)

    def open(self, key: str) -> BinaryIO:
        return self.path_for(key).open("rb")

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def size(self, key: str) -> int:
        return self.path_for(key).stat().st_size

    def delete(self, key: str) -> None:
        self.path_for(key).unlink(missing_ok=True)

    def withdraw(self, key: str) -> str | None:
        """Takes the blob away from its key at once (a rename), keeping the bytes until :meth:`purge` or
        :meth:`restore`, so a deletion can be undone when the transaction that decided it fails.
        Returns the token naming the withdrawn file; None when there was no file."""
        self._withdrawn.mkdir(parents=True, exist_ok=True)
        token = f"{uuid.uuid4().hex}{Path(key).suffix}"
        try:
            os.replace(self.path_for(key), self._withdrawn / token)
        except FileNotFoundError:
            return None
        return token

    def restore(self, key: str, token: str) -> None:
        os.replace(self._withdrawn / token, self.path_for(key))

    def purge(self, token: str) -> None:
        (self._withdrawn / token).unlink(missing_ok=True)

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A private folder on the store's filesystem (so ``put_file(move=True)`` is a rename), removed afterwards."""
        self._tmp.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(dir=self._tmp))
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def ping(self) -> None:
        self._tmp.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self._tmp):
            pass
