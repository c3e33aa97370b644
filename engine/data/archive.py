"""Safe, read-only views of zip/tar archives and directories, without extracting anything to disk.

Every member name is checked when the container is opened, so loaders only ever see relative,
normalised, regular-file names within the configured size limits; they read bytes via
:meth:`Container.read`, which streams members in storage order (one pass, even for ``.tar.gz``).
"""

from __future__ import annotations

import os
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from engine.data.errors import DatasetError, DatasetTooLarge
from engine.data.formats import accepted_formats
from engine.data.limits import LoadLimits

# Files that archivers and desktop tools add on their own; nobody means them as data.
_JUNK_DIRS = {"__MACOSX"}
_JUNK_FILES = {".DS_Store", "Thumbs.db", "desktop.ini"}
_GZIP_CHUNK = 1 << 20


def _member_field(name: str) -> str:
    return f"archive member {name}"


def clean_name(raw: str) -> str | None:
    """Normalise a member name to ``a/b/c``; None for junk; raises for unsafe names."""
    if raw.startswith(("/", "\\")) or (len(raw) > 1 and raw[1] == ":"):
        raise DatasetError(
            f"archive member {raw!r} has an absolute path",
            field=_member_field(raw),
            hint="create the archive from inside the dataset folder so paths are relative",
        )
    parts = [p for p in raw.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise DatasetError(
            f"archive member {raw!r} points outside the archive ('..' in its path)",
            field=_member_field(raw),
            hint="remove '..' components from the archive's paths",
        )
    if not parts or _JUNK_DIRS & set(parts) or parts[-1] in _JUNK_FILES or parts[-1].startswith("._"):
        return None
    return str(PurePosixPath(*parts))


class Container:
    """Regular files of an archive or directory, checked against :class:`LoadLimits`.

    Attributes:
        kind: ``zip``, ``tar`` or ``dir``.
        names: normalised file names, in storage order.
        dirs: normalised names of (possibly empty) directory entries.
    """

    def __init__(self, path: Path, limits: LoadLimits) -> None:
        self.path = path
        self.limits = limits
        self.names: list[str] = []
        self.dirs: set[str] = set()
        self._total = 0
        self._handles: dict[str, zipfile.ZipInfo | tarfile.TarInfo | Path] = {}
        self._sizes: dict[str, int] = {}
        self._zip: zipfile.ZipFile | None = None
        self._tar: tarfile.TarFile | None = None
        try:
            self.kind = self._open()
        except DatasetError:
            self.close()
            raise
        except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError, zlib.error) as exc:
            self.close()
            raise DatasetError(f"{path.name} is a damaged archive: {exc}", field="file",
                               hint="re-create the archive and upload it again") from exc

    def _open(self) -> str:
        if self.path.is_dir():
            self._scan_dir()
            return "dir"
        if zipfile.is_zipfile(self.path):
            self._zip = zipfile.ZipFile(self.path)
            self._scan_zip()
            return "zip"
        if tarfile.is_tarfile(self.path):
            self._tar = tarfile.open(self.path, "r:*")
            self._scan_tar()
            return "tar"
        with open(self.path, "rb") as f:
            head = f.read(4)
        gzipped = head[:2] == b"\x1f\x8b"
        if head == b"PK\x03\x04":
            # A zip's first member header without the central directory at its end: cut short or damaged.
            raise DatasetError(f"{self.path.name} is a damaged zip (cut short, or its end is missing)", field="file",
                               hint="re-create the zip, check its size against the original, and upload it again")
        raise DatasetError(
            f"{self.path.name} is " + ("a single gzip-compressed file, not a tar.gz archive" if gzipped
                                      else "not a zip, tar or .npz file"),
            field="file",
            hint=f"upload {accepted_formats()}; several files as one zip or tar(.gz) archive",
        )

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the underlying archive file."""
        for archive in (self._zip, self._tar):
            if archive is not None:
                archive.close()

    def _add(self, raw: str, size: int, handle: zipfile.ZipInfo | tarfile.TarInfo | Path | None) -> None:
        """Record one entry; ``handle`` None marks a directory entry."""
        if len(self.names) + len(self.dirs) >= self.limits.max_archive_members:
            raise DatasetTooLarge(
                f"{self.path.name} has more than {self.limits.max_archive_members:,} members",
                field="file",
                hint="pack the images into an .npz instead of one file per image",
            )
        name = clean_name(raw)
        if name is None:
            return
        if handle is None:
            self.dirs.add(name)
            return
        if name in self._handles:
            raise DatasetError(f"archive member {name} appears twice", field=_member_field(name),
                               hint="re-create the archive with unique file names")
        self._total += size
        self.limits.check_total(self._total, "file")
        self.names.append(name)
        self._handles[name] = handle
        self._sizes[name] = size

    def _scan_zip(self) -> None:
        for info in self._zip.infolist():
            field = _member_field(info.filename)
            if info.flag_bits & 0x1:
                raise DatasetError(f"archive member {info.filename} is encrypted", field=field,
                                   hint="upload an archive without a password")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise DatasetError(f"archive member {info.filename} is a symbolic link", field=field,
                                   hint="archive the files themselves, not links to them")
            self.limits.check_ratio(info.file_size, info.compress_size, field)
            self._add(info.filename, info.file_size, None if info.is_dir() else info)

    def _scan_tar(self) -> None:
        # Iterate header by header so a limit is hit before tarfile skips (decompresses) huge members.
        while (info := self._tar.next()) is not None:
            if not (info.isreg() or info.isdir()):
                kind = "link" if info.issym() or info.islnk() else "special file"
                raise DatasetError(
                    f"archive member {info.name} is a {kind}; only regular files are accepted",
                    field=_member_field(info.name),
                    hint="archive the files themselves (tar --dereference)",
                )
            self._add(info.name, info.size, None if info.isdir() else info)
        compressed = self.path.stat().st_size
        self.limits.check_ratio(self._total, compressed, "file")

    def _scan_dir(self) -> None:
        for root, dirnames, filenames in os.walk(self.path):
            dirnames.sort()
            rel_root = Path(root).relative_to(self.path)
            for d in dirnames:
                self._add((rel_root / d).as_posix(), 0, None)
            for f in sorted(filenames):
                full = Path(root) / f
                if full.is_symlink() or not full.is_file():
                    raise DatasetError(f"{full} is a link or special file", field=f"file {full}",
                                       hint="copy the real files into the dataset folder")
                self._add((rel_root / f).as_posix(), full.stat().st_size, full)

    def field(self, name: str) -> str:
        """The error ``field`` naming one of :attr:`names`."""
        return f"file {name}" if self.kind == "dir" else _member_field(name)

    def size(self, name: str) -> int:
        """The uncompressed size that the archive declares for one of :attr:`names` (checked against the limits)."""
        return self._sizes[name]

    @contextmanager
    def open(self, name: str) -> Iterator[BinaryIO]:
        """One member as a binary stream; a read error inside the ``with`` block becomes a DatasetError naming it."""
        handle = self._handles[name]
        try:
            if isinstance(handle, zipfile.ZipInfo):
                # ZipExtFile stops at the declared (already checked) size and verifies the CRC.
                stream: BinaryIO = self._zip.open(handle)
            elif isinstance(handle, tarfile.TarInfo):
                stream = self._tar.extractfile(handle)
            else:
                stream = handle.open("rb")
            with stream:
                yield stream
        except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError, zlib.error) as exc:
            raise DatasetError(f"{name} cannot be read: {exc}", field=self.field(name),
                               hint="re-create the archive and upload it again") from exc

    def read(self, names: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """Yield ``(name, bytes)`` for the requested members, in storage order."""
        wanted = set(names)
        for name in self.names:
            if name in wanted:
                with self.open(name) as f:
                    data = f.read()
                yield name, data


class GzipReader:
    """A gzip stream decompressed on demand, with the archive limits applied while it expands.

    Readers take a header first and check it before asking for the data it announces, so a
    stream is only ever inflated as far as its (checked) header says, and never past a limit.
    """

    def __init__(self, data: bytes, field: str, limits: LoadLimits) -> None:
        self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._input = data
        self._compressed = len(data)
        self._produced = 0
        self._field = field
        self._limits = limits
        # Inflating stops one byte past the first limit that applies, so a bomb never fills memory;
        # the checks in read() then always raise for such output.
        self._cap = min(limits.max_uncompressed_bytes,
                        max(1 << 20, int(limits.max_compression_ratio * len(data))))

    def read(self, n: int) -> bytes:
        """The next ``n`` bytes; fewer only where the stream ends (see :meth:`check_end`)."""
        parts: list[bytes] = []
        wanted = n
        while wanted > 0 and not self._inflater.eof:
            try:
                out = self._inflater.decompress(self._input, min(wanted, self._cap + 1 - self._produced))
            except zlib.error as exc:
                raise DatasetError(f"{self._field} is not a valid gzip file: {exc}", field=self._field,
                                   hint="compress it again with gzip, or upload it uncompressed") from exc
            self._input = self._inflater.unconsumed_tail
            if not out and not self._input:
                break  # the input ran out before the stream's end: check_end says so
            self._produced += len(out)
            self._limits.check_total(self._produced, self._field)
            self._limits.check_ratio(self._produced, self._compressed, self._field)
            parts.append(out)
            wanted -= len(out)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readinto(self, target: memoryview) -> int:
        """Fill ``target`` a bounded chunk at a time, never holding a second copy of it; returns the bytes written."""
        done = 0
        while done < len(target) and (chunk := self.read(min(_GZIP_CHUNK, len(target) - done))):
            target[done:done + len(chunk)] = chunk
            done += len(chunk)
        return done

    def check_end(self) -> None:
        """Raise unless the whole gzip stream, trailer included, has been read."""
        if not self._inflater.eof:
            raise DatasetError(f"{self._field} is a truncated gzip file", field=self._field,
                               hint="the upload was probably cut off; upload the file again")
