"""Dataset formats: the registry that detection, loading, the help texts and the README's table all read.

A format is a detector and a loader, named as ``"module:function"`` strings and imported only when a source is
read, so that listing the formats (the API's and the CLI's help) imports no loader. Adding a format is its module
plus a line below. Registration order is detection order: the first format whose detector claims a source reads
it, and the one format without a detector (``imagefolder``) reads whatever no other format claims.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.registry import Registry


@dataclass(frozen=True)
class DatasetFormat:
    """Attributes:
        name: registry key, recorded as the dataset's ``format`` (``idx``).
        description: one line for the README's table of formats.
        accepts: a noun phrase for the help texts' list of what a source can be ("the four MNIST IDX files").
        detect: ``"module:function"`` taking the source's :class:`~engine.data.archive.Container` and returning
            whether the source is in this format; None for the format that takes whatever no other one claims.
        loader: ``"module:function"`` taking the container and the :class:`~engine.data.limits.LoadLimits`
            and returning the :class:`~engine.data.raw.RawData` as stored.
    """

    name: str
    description: str
    accepts: str
    detect: str | None
    loader: str


FORMATS: Registry[DatasetFormat] = Registry("dataset format")


def accepted_formats() -> str:
    """The registered formats as one phrase for help texts: "an .npz, ... or class folders of images"."""
    *rest, last = [fmt.accepts for fmt in FORMATS]
    return f"{', '.join(rest)} or {last}" if rest else last


def formats_table() -> str:
    """The registered formats as the README's Markdown table (name and what it reads)."""
    rows = [f"| `{fmt.name}` | {fmt.description} |" for fmt in FORMATS]
    return "\n".join(["| format | what it reads |", "| --- | --- |", *rows])


FORMATS.register(DatasetFormat(
    "npz", "NumPy .npz with arrays x and y, optionally x_test, y_test and classes, read without unpickling",
    "an .npz", "engine.data.npz:is_npz", "engine.data.npz:load_npz"))
FORMATS.register(DatasetFormat(
    "idx", "MNIST/Fashion-MNIST IDX files (.gz or not), as an archive or a folder; the t10k pair is the test split",
    "the four MNIST IDX files", "engine.data.idx:is_idx", "engine.data.idx:load_idx"))
FORMATS.register(DatasetFormat(
    "cifar", "CIFAR-10/100 python batches, as an archive or a folder, read by an unpickler that builds only arrays",
    "CIFAR-10/100 python batches", "engine.data.cifar:is_cifar", "engine.data.cifar:load_cifar"))
FORMATS.register(DatasetFormat(
    "imagefolder", "PNG/JPEG/BMP/GIF images in one folder per class, optionally under train/ and test/, as an "
    "archive or a folder; any source that no other format claims",
    "class folders of images", None, "engine.data.imagefolder:load_imagefolder"))
