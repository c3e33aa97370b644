"""Class-folder image datasets (``<class>/<image>`` or ``train|test/<class>/<image>``) in an archive."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from engine.data.archive import Container
from engine.data.errors import DatasetError, DatasetTooLarge
from engine.data.limits import LoadLimits
from engine.data.raw import RawData
from engine.data.sources import Sources

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
# Only these decoders may run: Image.open would otherwise try every plugin PIL has, some of which
# (EPS via Ghostscript) start external programs.
# PIL.Image.MAX_IMAGE_PIXELS is left at Pillow's default on purpose: it is process-wide state shared
# with the rest of the service, and here it is only a backstop. Image.open parses just the header,
# our own max_image_side check then rejects big images before any pixel is decoded, and headers past
# Pillow's threshold raise DecompressionBombError, which becomes DatasetTooLarge.
_PIL_FORMATS = ["PNG", "JPEG", "BMP", "GIF"]
_GRAY_MODES = {"1", "L", "LA"}
_LAYOUT_HINT = ("put each image directly in its class folder: <class>/<image>, or train/<class>/<image> "
                "plus optional test/<class>/<image>")


def _layout(container: Container) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """Map each image member to its (split, class) and return the sorted training classes.

    A single wrapper folder around the whole tree (``mydata/train/cat/1.png``, as zipping a folder
    produces) is ignored. Empty class folders still count as classes, so validation can name them.
    """
    for name in container.names:
        if not name.lower().endswith(IMAGE_EXTENSIONS):
            raise DatasetError(f"{container.field(name)} is not an image", field=container.field(name),
                               hint=f"only {', '.join(IMAGE_EXTENSIONS)} files are accepted; remove other files")
    if not container.names:
        raise DatasetError("the archive contains no images", field="file", hint=_LAYOUT_HINT)
    paths = [name.split("/") for name in container.names]
    skip = 0
    while (all(len(p) - skip >= 3 for p in paths) and len({p[skip] for p in paths}) == 1
           and paths[0][skip] not in ("train", "test")):
        skip += 1
    wrapper = paths[0][:skip]
    parts = [p[skip:] for p in paths]
    dirs = [d[skip:] for d in (d.split("/") for d in container.dirs) if d[:skip] == wrapper]
    tops = {p[0] for p in parts}
    split_layout = "train" in tops and tops <= {"train", "test"}
    files: dict[str, tuple[str, str]] = {}
    for name, p in zip(container.names, parts):
        if len(p) != (3 if split_layout else 2):
            raise DatasetError(f"{container.field(name)} is not directly inside a class folder",
                               field=container.field(name), hint=_LAYOUT_HINT)
        files[name] = (p[0], p[1]) if split_layout else ("train", p[0])
    if split_layout:
        empty_dirs = [d[1] for d in dirs if len(d) == 2 and d[0] == "train"]
    else:
        empty_dirs = [d[0] for d in dirs if len(d) == 1]
    classes = sorted({c for s, c in files.values() if s == "train"} | set(empty_dirs))
    for name, (split, cls) in files.items():
        if cls not in classes:
            raise DatasetError(f"test class {cls!r} has no training folder", field=container.field(name),
                               hint=f"add train/{cls}/ with images, or remove test/{cls}/")
    return files, classes


def _decode(name: str, data: bytes, field: str, limits: LoadLimits) -> np.ndarray:
    """Decode one image to (H, W, C) uint8: grayscale modes to 1 channel, everything else to RGB."""
    try:
        with Image.open(io.BytesIO(data), formats=_PIL_FORMATS) as im:
            # Image.open reads only the header, so the size check runs before any pixel is decoded.
            limits.check_side(im.size[1], im.size[0], field)
            if im.mode.startswith(("I", "F")):
                raise DatasetError(f"{field} has {im.mode} (16/32-bit) pixels", field=field,
                                   hint="save the images with 8 bits per channel")
            arr = np.asarray(im.convert("L" if im.mode in _GRAY_MODES else "RGB"))
    except Image.DecompressionBombError as exc:
        raise DatasetTooLarge(f"{field} claims absurd dimensions ({exc})", field=field,
                              hint="downscale the images before uploading") from exc
    except Image.UnidentifiedImageError as exc:
        raise DatasetError(f"{field} is not a PNG, JPEG, BMP or GIF image", field=field,
                           hint="re-export the file, or remove it from the archive") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise DatasetError(f"{field} is not a readable image: {exc}", field=field,
                           hint="re-export the file, or remove it from the archive") from exc
    return arr[:, :, None] if arr.ndim == 2 else arr


def load_imagefolder(container: Container, limits: LoadLimits) -> RawData:
    """Decode every image straight from the archive; labels follow alphabetical class order."""
    files, classes = _layout(container)
    limits.check_samples(len(files), "file")
    images: dict[str, np.ndarray] = {}
    for name, data in container.read(files):
        images[name] = _decode(name, data, container.field(name), limits)
        if len(images) == 1:  # Fail early, before decoding the rest, if the whole set cannot fit.
            limits.check_decoded(len(files) * images[name].shape[0] * images[name].shape[1] * 3, "file")
    order = sorted(files, key=lambda n: (files[n], n))
    ref = order[0]
    height, width = images[ref].shape[:2]
    # Mixed grayscale and colour folders become RGB, exactly as PIL's L -> RGB conversion would.
    channels = max(a.shape[2] for a in images.values())
    label = {c: i for i, c in enumerate(classes)}
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    members: dict[str, list[str]] = {}
    for split in ("train", "test"):
        names = members[split] = [n for n in order if files[n][0] == split]
        x = np.empty((len(names), height, width, channels), np.uint8)
        for i, name in enumerate(names):
            if images[name].shape[:2] != (height, width):
                h, w = images[name].shape[:2]
                raise DatasetError(
                    f"image {name} is {w}x{h} pixels but {ref} is {width}x{height}; "
                    "all images must have the same size",
                    field=container.field(name), hint="resize the images to one size before uploading")
            x[i] = images.pop(name)  # broadcasting repeats a grey channel into all three
        y = np.array([label[files[n][1]] for n in names], np.int64)
        out[split] = (x.transpose(0, 3, 1, 2), y)
    has_test = len(out["test"][1]) > 0
    return RawData(x=out["train"][0], y=out["train"][1], classes=classes,
                   x_test=out["test"][0] if has_test else None, y_test=out["test"][1] if has_test else None,
                   sources=Sources.members(members["train"]),
                   test_sources=Sources.members(members["test"]) if has_test else None)
