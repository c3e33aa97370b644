"""The MNIST IDX format: ``train-images-idx3-ubyte[.gz]`` and friends, in a directory or archive."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from pathlib import PurePosixPath

import numpy as np

from engine.data.archive import Container, GzipReader
from engine.data.errors import DatasetError
from engine.data.limits import LoadLimits
from engine.data.raw import RawData
from engine.data.sources import Sources

# Both the canonical dash spelling and the dot spelling some mirrors use (train-images.idx3-ubyte).
_IDX_NAME = re.compile(r"^(train|t10k)-(images|labels)[.-]idx[13]-ubyte(\.gz)?$")
_MAGIC = {"images": 2051, "labels": 2049}  # 0x08 = uint8, then the number of dimensions
_NDIM = {"images": 3, "labels": 1}
_ROLES = ("train-images", "train-labels", "t10k-images", "t10k-labels")


def find_idx_members(names: Iterable[str]) -> dict[str, list[str]]:
    """Group member names by IDX role (``train-images`` ...); empty when none looks like IDX."""
    roles: dict[str, list[str]] = {}
    for name in names:
        if m := _IDX_NAME.match(name.rsplit("/", 1)[-1]):
            roles.setdefault(f"{m[1]}-{m[2]}", []).append(name)
    return roles


def is_idx(container: Container) -> bool:
    """Whether any member is named like an IDX file; :func:`load_idx` then names the ones missing."""
    return bool(find_idx_members(container.names))


def _check_dims(dims: list[int], kind: str, field: str, limits: LoadLimits) -> None:
    limits.check_samples(dims[0], field)
    if kind == "images":
        limits.check_side(dims[1], dims[2], field)
        limits.check_decoded(math.prod(dims), field)


def _check_length(found: int, expected: int, dims: list[int], field: str, more: bool = False) -> None:
    """Raise unless the data holds exactly what the header says (``more``: there is data past it)."""
    if found != expected or more:
        holds = "more than that" if more else f"{found:,}"
        raise DatasetError(
            f"{field} header says {' x '.join(map(str, dims))} = {expected:,} bytes of data but the file "
            f"holds {holds}" + (" (truncated)" if found < expected else ""),
            field=field, hint="the file is damaged or cut off; upload the original file again")


def _parse(data: bytes, kind: str, field: str, limits: LoadLimits) -> np.ndarray:
    """Check an IDX file's header, against the limits and its length, before using its data; return the uint8 array.

    Sizes are exact Python integers, so a header whose dimensions multiply past 2**63 cannot wrap
    around into a small, plausible size.
    """
    gzipped = GzipReader(data, field, limits) if data[:2] == b"\x1f\x8b" else None
    ndim = _NDIM[kind]
    header = 4 + 4 * ndim
    head = gzipped.read(header) if gzipped else data[:header]
    magic = int.from_bytes(head[:4], "big")
    if magic != _MAGIC[kind]:  # which also fixes the number of dimensions (the magic's last byte)
        raise DatasetError(
            f"{field} does not start with the IDX {kind} magic number {_MAGIC[kind]} (found {magic})",
            field=field, hint=f"upload the original uint8 IDX {kind} file under its usual name")
    if len(head) < header:
        raise DatasetError(f"{field} is truncated inside its header", field=field,
                           hint="the file was cut off; upload it again")
    dims = [int.from_bytes(head[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    expected = math.prod(dims)
    if gzipped is None:
        # The whole file is at hand: a header that disagrees with it is damage, whatever size it claims.
        _check_length(len(data) - header, expected, dims, field)
        _check_dims(dims, kind, field, limits)
        return np.frombuffer(data, np.uint8, count=expected, offset=header).reshape(dims)
    # Only inflating tells a gzip stream's length, so the header's claim meets the limits first.
    _check_dims(dims, kind, field, limits)
    array = np.empty(expected, np.uint8)
    found = gzipped.readinto(memoryview(array))
    if found < expected:
        gzipped.check_end()  # a cut-off gzip says so, rather than the data being short
    _check_length(found, expected, dims, field, more=found == expected and bool(gzipped.read(1)))
    gzipped.check_end()
    return array.reshape(dims)


def load_idx(container: Container, limits: LoadLimits) -> RawData:
    """Read the training pair and, when present, the ``t10k`` test pair."""
    roles = find_idx_members(container.names)
    for role, names in roles.items():
        if len(names) > 1:
            raise DatasetError(f"more than one {role} file: {', '.join(names)}", field=container.field(names[1]),
                               hint="upload a single IDX dataset at a time")
    missing = [r for r in _ROLES if r not in roles]
    if missing and missing != list(_ROLES[2:]):  # the test pair is optional, but only as a pair
        raise DatasetError(f"the IDX dataset lacks {', '.join(missing)}", field="file",
                           hint="include train-images, train-labels and, optionally, both t10k files")
    member = {names[0]: role for role, names in roles.items()}
    arrays: dict[str, np.ndarray] = {}
    for name, data in container.read(member):
        kind = member[name].split("-")[1]
        arrays[member[name]] = _parse(data, kind, container.field(name), limits)
    for split in ("train", "t10k"):
        n_images, n_labels = (len(arrays.get(f"{split}-{kind}", ())) for kind in ("images", "labels"))
        if n_images != n_labels:
            raise DatasetError(f"{split}-images has {n_images:,} images but {split}-labels has {n_labels:,} labels",
                               field=container.field(roles[f"{split}-labels"][0]), hint="upload matching IDX files")
    has_test = "t10k-images" in arrays
    file_of = {role: PurePosixPath(names[0]).name for role, names in roles.items()}
    return RawData(
        x=arrays.pop("train-images")[:, None],
        y=arrays["train-labels"],
        x_test=arrays.pop("t10k-images")[:, None] if has_test else None,
        y_test=arrays.get("t10k-labels"),
        sources=Sources.rows(file_of["train-images"], len(arrays["train-labels"])),
        test_sources=Sources.rows(file_of["t10k-images"], len(arrays["t10k-labels"])) if has_test else None,
    )
