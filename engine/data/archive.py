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
from pathlib import Path, PurePosixPath

from engine.data.errors import DatasetError, DatasetTooLarge
from engine.data.limits import LoadLimits

# Files that archivers and desktop tools add on their own; nobody means them as data.
_JUNK_DIRS = {"__MACOSX"}
_JUNK_FILES = {".DS_Store", "Thumbs.db", "desktop.ini"}


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
            gzipped = f.read(2) == b"\x1f\x8b"
        raise DatasetError(
            f"{self.path.name} is " + ("a single gzip-compressed file, not a tar.gz archive" if gzipped
                                      else "not a zip, tar or .npz file"),
            field="file",
            hint="upload an .npz, or a zip/tar(.gz) of class folders, of the four MNIST IDX files "
            "or of the CIFAR python batches",
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

    def read(self, names: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """Yield ``(name, bytes)`` for the requested members, in storage order."""
        wanted = set(names)
        for name in self.names:
            if name not in wanted:
                continue
            handle = self._handles[name]
            try:
                if isinstance(handle, zipfile.ZipInfo):
                    # ZipExtFile stops at the declared (already checked) size and verifies the CRC.
                    with self._zip.open(handle) as f:
                        data = f.read()
                elif isinstance(handle, tarfile.TarInfo):
                    data = self._tar.extractfile(handle).read()
                else:
                    data = handle.read_bytes()
            except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError, zlib.error) as exc:
                raise DatasetError(f"{name} cannot be read: {exc}", field=self.field(name),
                                   hint="re-create the archive and upload it again") from exc
            yield name, data


def gunzip(data: bytes, field: str, limits: LoadLimits) -> bytes:
    """Decompress a gzip stream with the archive limits applied while it expands."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    # Stop inflating one byte past the first limit that applies, so a bomb never fills memory;
    # the two checks below then always raise for such output.
    cap = min(limits.max_uncompressed_bytes, max(1 << 20, int(limits.max_compression_ratio * len(data))))
    try:
        out = inflater.decompress(data, cap + 1)
    except zlib.error as exc:
        raise DatasetError(f"{field} is not a valid gzip file: {exc}", field=field,
                           hint="compress it again with gzip, or upload it uncompressed") from exc
    limits.check_total(len(out), field)
    limits.check_ratio(len(out), len(data), field)
    if not inflater.eof:
        raise DatasetError(f"{field} is a truncated gzip file", field=field,
                           hint="the upload was probably cut off; upload the file again")
    return out
