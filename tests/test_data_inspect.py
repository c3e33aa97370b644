"""``inspect_dataset``: the same checks and summary as ``load_dataset`` on every format, without the
float32 copies; and headers (.npy, IDX) that are checked against the limits and the file before use."""

from __future__ import annotations

import gzip
import io
import pickle
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.data import DatasetError, DatasetTooLarge, LoadLimits, inspect_dataset, load_dataset
from tests.hostile_files import GOOD, X, Y, npz_bytes, png
from tests.test_data_loaders import cifar_batch, class_images, idx_bytes, tiny_idx, write_tar, write_zip


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def _idx_dir(path: Path, gz: bool, pairs: int = 2) -> Path:
    path.mkdir()
    for name, arr in list(tiny_idx().items())[: 2 * pairs]:
        data = idx_bytes(arr)
        (path / (name + (".gz" if gz else ""))).write_bytes(gzip.compress(data) if gz else data)
    return path


def _cifar10(path: Path) -> Path:
    members = {f"cifar-10-batches-py/data_batch_{i}": cifar_batch(6, "labels", i, 4) for i in (1, 2)}
    members["cifar-10-batches-py/test_batch"] = cifar_batch(3, "labels", 9, 4)
    members["cifar-10-batches-py/batches.meta"] = pickle.dumps({b"label_names": ["plane", "car", "bird"]})
    return write_tar(path / "cifar-10-python.tar.gz", members, "w:gz")


def _cifar100(path: Path) -> Path:
    members = {"cifar-100-python/train": cifar_batch(9, "fine_labels", 0, 2),
               "cifar-100-python/meta": pickle.dumps({b"fine_label_names": ["x", "y", "z"]}, protocol=2)}
    return write_tar(path / "c100.tar", members)


_RNG = np.random.default_rng(0)
_PIXELS = _RNG.integers(0, 256, (40, 3, 5, 7), dtype=np.uint8)
_LABELS = np.arange(40) % 4

# Every format and layout the loaders support, each built in a fresh folder.
SOURCES: dict[str, Callable[[Path], Path | str]] = {
    "npz uint8 nchw, provided test": lambda d: _npz(d / "a.npz", x=_PIXELS, y=_LABELS, x_test=_PIXELS[:8],
                                                    y_test=_LABELS[:8], classes=np.array(list("abcd"))),
    "npz uint8 nhwc, held out": lambda d: _npz(d / "b.npz", x=_PIXELS.transpose(0, 2, 3, 1), y=_LABELS),
    "npz uint8 nhw, fortran order": lambda d: _npz(d / "c.npz", x=np.asfortranarray(_PIXELS[:, 0]), y=_LABELS),
    "npz float32, held out": lambda d: _npz(d / "d.npz", x=_PIXELS.astype(np.float32) / 255, y=_LABELS),
    "npz float64 and int16, provided": lambda d: _npz(d / "e.npz", x=_PIXELS.astype(np.float64), y=_LABELS,
                                                      x_test=_PIXELS[:4].astype(np.int16), y_test=_LABELS[:4]),
    "npz byte-string classes": lambda d: _npz(d / "f.npz", x=_PIXELS, y=_LABELS, classes=np.array([b"a", b"b", b"c", b"d"])),
    "zip folders, train and test": lambda d: write_zip(
        d / "pets.zip", class_images("train/", {"dog": 3, "cat": 4}) | class_images("test/", {"cat": 2, "dog": 1})),
    "tar.gz folders, rgb, held out": lambda d: write_tar(
        d / "rgb.tar.gz", class_images("data/", {"a": 4, "b": 3}, rgb=True), "w:gz"),
    "tar folders": lambda d: write_tar(d / "t.tar", class_images("", {"x": 3, "y": 3})),
    "idx dir gz": lambda d: _idx_dir(d / "mnist", gz=True),
    "idx dir raw, held out": lambda d: _idx_dir(d / "mnist", gz=False, pairs=1),
    "idx zip": lambda d: write_zip(d / "m.zip", {f"mnist/{k}.gz": gzip.compress(idx_bytes(v)) for k, v in tiny_idx().items()}),
    "idx tar.gz": lambda d: write_tar(d / "m.tar.gz", {k: idx_bytes(v) for k, v in tiny_idx().items()}, "w:gz"),
    "cifar-10": _cifar10,
    "cifar-100, held out": _cifar100,
    "builtin digits": lambda d: "builtin:digits",
}


@pytest.mark.parametrize("build", SOURCES.values(), ids=SOURCES.keys())
def test_inspection_summary_equals_the_loaded_one(tmp_path: Path, build: Callable[[Path], Path | str]) -> None:
    source = build(tmp_path)
    options: dict[str, Any] = {"test_fraction": 0.25, "split_seed": 3}
    summary = inspect_dataset(source, **options)
    loaded = load_dataset(source, **options)
    assert summary.to_dict() == loaded.summary()
    assert summary.decoded_bytes == loaded.x_train.nbytes + loaded.x_test.nbytes
    assert inspect_dataset(source, name="mine", **options).name == "mine" == load_dataset(source, name="mine").name


# --- the same refusals -----------------------------------------------------------------------------

REFUSED: dict[str, tuple[Callable[[Path], Path], LoadLimits, str]] = {
    # (source, limits, field): each refused identically whether inspected or loaded.
    "float64 pixels beyond float32": (lambda d: _npz(d / "a.npz", x=np.full((6, 2, 2), 1e300), y=Y), LoadLimits(), "x"),
    "nan pixel in the test split": (lambda d: _npz(d / "b.npz", x=X.astype(np.float32), y=Y,
                                                   x_test=np.full((2, 4, 4), np.nan, np.float32), y_test=Y[:2]),
                                    LoadLimits(), "x_test"),
    "npz decoded size": (lambda d: _npz(d / "c.npz", x=np.zeros((10, 8, 8), np.uint8), y=np.arange(10) % 2),
                         LoadLimits(max_decoded_bytes=10 * 64 * 4 - 1), "x"),
    "npz x and x_test together": (lambda d: _npz(d / "d.npz", x=X, y=Y, x_test=X, y_test=Y),
                                  LoadLimits(max_samples=11), "x"),
    "npz image side": (lambda d: _npz(d / "e.npz", x=np.zeros((6, 3, 9, 9)), y=Y), LoadLimits(max_image_side=8), "x"),
    "idx samples": (lambda d: _idx_dir(d / "m", gz=True), LoadLimits(max_samples=20), "file train-images-idx3-ubyte.gz"),
    "idx image side": (lambda d: _idx_dir(d / "m", gz=False), LoadLimits(max_image_side=4), "file t10k-images-idx3-ubyte"),
    "cifar decoded size": (_cifar10, LoadLimits(max_decoded_bytes=15 * 192 * 4 - 1), "file"),
    "cifar image side": (_cifar10, LoadLimits(max_image_side=7), "archive member cifar-10-batches-py/data_batch_1"),
    "folder decoded size": (lambda d: write_zip(d / "f.zip", GOOD), LoadLimits(max_decoded_bytes=6 * 36 * 3 * 4 - 1), "file"),
}


@pytest.mark.parametrize("case", REFUSED.values(), ids=REFUSED.keys())
def test_inspection_refuses_what_loading_refuses(tmp_path: Path, case: tuple[Callable[[Path], Path], LoadLimits, str]) -> None:
    build, limits, field = case
    source = build(tmp_path)
    errors = []
    for read in (inspect_dataset, load_dataset):
        with pytest.raises(DatasetError) as info:
            read(source, limits=limits)
        errors.append((type(info.value), info.value.field, info.value.message))
    assert errors[0] == errors[1] and errors[0][1] == field
    assert (errors[0][0] is DatasetTooLarge) == (limits != LoadLimits())


# --- memory: no float32 copy, nothing read past a refused header -----------------------------------


def _peak_bytes(call: Callable[[], object]) -> int:
    """Peak of the memory allocated by ``call`` (numpy reports its arrays to tracemalloc)."""
    tracemalloc.start()
    try:
        try:
            call()
        except DatasetError:
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def sparse_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20,000 32x32 uint8 images, mostly zeros (20 MiB of pixels in a file of about 0.2 MiB)."""
    x = np.zeros((20_000, 32, 32), np.uint8)
    rng = np.random.default_rng(1)
    x.reshape(-1)[rng.integers(0, x.size, 30_000)] = rng.integers(1, 256, 30_000)
    path = tmp_path_factory.mktemp("sparse") / "sparse.npz"
    np.savez_compressed(path, x=x, y=rng.integers(0, 10, len(x)))
    return path


def test_inspection_holds_the_pixels_once_as_stored(sparse_npz: Path) -> None:
    pixels = 20_000 * 32 * 32
    inspected = _peak_bytes(lambda: inspect_dataset(sparse_npz))
    loaded = _peak_bytes(lambda: load_dataset(sparse_npz))
    # One uint8 copy, plus bounded chunks: 1 MiB reads, 1 MiB float32 / 2 MiB float64 for the statistics, labels.
    assert inspected < pixels + (12 << 20), f"inspection peaked at {inspected / pixels:.2f}x the pixel bytes"
    assert loaded > 4 * pixels  # the float32 arrays jobs need, for comparison


def test_npz_header_over_the_limits_is_refused_before_its_data_is_read(sparse_npz: Path) -> None:
    limits = LoadLimits(max_decoded_bytes=1 << 20)
    with pytest.raises(DatasetTooLarge) as info:
        inspect_dataset(sparse_npz, limits=limits)
    assert info.value.field == "x" and "need 78.1 MiB" in info.value.message and "1.0 MiB" in info.value.message
    assert _peak_bytes(lambda: inspect_dataset(sparse_npz, limits=limits)) < 1 << 20


def _npy(shape: tuple[int, ...], descr: str = "|u1", data: bytes = b"") -> bytes:
    """A .npy member whose header declares ``shape`` whatever data follows it."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + data


def _npz_members(path: Path, **members: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for key, data in members.items():
            zf.writestr(f"{key}.npy", data)
    return path


@pytest.mark.parametrize("shape", [(2**40, 32, 32), (2**62, 2**62, 4), (6, 4, 5)], ids=["huge", "wraps int64", "plausible"])
def test_npz_header_that_disagrees_with_its_member_is_refused_without_allocating(tmp_path: Path, shape: tuple[int, ...]) -> None:
    path = _npz_members(tmp_path / "lie.npz", x=_npy(shape, data=bytes(96)), y=_npy((6,), "<i8", Y.astype("<i8").tobytes()))
    for read in (inspect_dataset, load_dataset):
        with pytest.raises(DatasetError) as info:
            read(path)
        assert info.value.field == "x" and "its member holds 96 bytes" in info.value.message
    assert _peak_bytes(lambda: inspect_dataset(path)) < 1 << 20


def test_npz_object_array_header_is_refused_unread(tmp_path: Path) -> None:
    path = _npz_members(tmp_path / "o.npz", x=_npy((6, 4, 4), data=X.tobytes()), y=_npy((6,), "|O", b"\x80\x04junk"))
    with pytest.raises(DatasetError) as info:
        inspect_dataset(path)
    assert info.value.field == "y" and "pickled object arrays are not accepted" in info.value.message


# --- IDX headers -----------------------------------------------------------------------------------


def _idx_header(magic: int, *dims: int) -> bytes:
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)


def _idx_zip(path: Path, images: bytes, gz: bool) -> Path:
    """A zip of IDX training images (as given) and four matching labels, both gzipped when ``gz``."""
    files = {"train-images-idx3-ubyte": images, "train-labels-idx1-ubyte": _idx_header(2049, 4) + bytes([0, 1, 0, 1])}
    return write_zip(path, {k + (".gz" if gz else ""): gzip.compress(v) if gz else v for k, v in files.items()})


@pytest.mark.parametrize("dims", [(4, 2**31, 2**31), (2**32 - 1, 2**32 - 1, 2**32 - 1), (2**16, 2**16, 2**32 - 1)])
def test_idx_dimensions_that_overflow_int64_are_refused(tmp_path: Path, dims: tuple[int, int, int]) -> None:
    raw = _idx_zip(tmp_path / "raw.zip", _idx_header(2051, *dims), gz=False)
    for read in (inspect_dataset, load_dataset):
        with pytest.raises(DatasetError) as info:
            read(raw)
        assert type(info.value) is DatasetError and info.value.field == "archive member train-images-idx3-ubyte"
        assert f"= {dims[0] * dims[1] * dims[2]:,} bytes of data but the file holds 0" in info.value.message
    # Compressed, only inflating could tell the length, so the claim meets the limits first.
    gz = _idx_zip(tmp_path / "gz.zip", _idx_header(2051, *dims), gz=True)
    with pytest.raises(DatasetTooLarge) as info:
        inspect_dataset(gz)
    assert info.value.field == "archive member train-images-idx3-ubyte.gz"


def test_idx_gz_header_over_the_limits_is_refused_before_inflating(tmp_path: Path) -> None:
    x = np.zeros((50_000, 28, 28), np.uint8)
    x.reshape(-1)[np.random.default_rng(0).integers(0, x.size, 200_000)] = 7  # compresses well, but no bomb
    images = gzip.compress(_idx_header(2051, *x.shape) + x.tobytes())
    path = tmp_path / "m"
    path.mkdir()
    (path / "train-images-idx3-ubyte.gz").write_bytes(images)
    (path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_header(2049, 50_000) + bytes(50_000)))
    limits = LoadLimits(max_samples=1000)
    with pytest.raises(DatasetTooLarge) as info:
        inspect_dataset(path, limits=limits)
    assert info.value.field == "file train-images-idx3-ubyte.gz" and "50,000 images" in info.value.message
    assert _peak_bytes(lambda: inspect_dataset(path, limits=limits)) < 2 * len(images) + (1 << 20)


def test_idx_gz_longer_than_its_header_says(tmp_path: Path) -> None:
    path = _idx_zip(tmp_path / "m.zip", _idx_header(2051, 4, 3, 3) + bytes(36 + 5), gz=True)
    with pytest.raises(DatasetError) as info:
        inspect_dataset(path)
    assert info.value.field == "archive member train-images-idx3-ubyte.gz"
    assert "36 bytes of data but the file holds more than that" in info.value.message


# --- class names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,words",
    [("a\x00b", "U+0000"), ("bell\x07", "U+0007"), ("esc\x1b[31m", "U+001B"), ("", "is empty"), ("   ", "is empty"),
     ("x" * 201, "201 characters long"), ("\ud800", "lone surrogate")],
    ids=["nul", "bell", "escape", "empty", "blank", "too long", "surrogate"],
)
def test_unstorable_class_names_are_refused(tmp_path: Path, name: str, words: str) -> None:
    path = tmp_path / "d.npz"
    path.write_bytes(npz_bytes(x=X, y=Y, classes=np.array(["ok", name])))
    for read in (inspect_dataset, load_dataset):
        with pytest.raises(DatasetError) as info:
            read(path)
        assert info.value.field == "classes" and words in info.value.message and info.value.hint


def test_class_names_from_folders_and_cifar_meta_are_checked(tmp_path: Path) -> None:
    folders = write_zip(tmp_path / "f.zip", {"a/0.png": GOOD["a/0.png"], "a/1.png": GOOD["a/1.png"],
                                             "b\x01c/0.png": png(np.zeros((6, 6), np.uint8)), "b\x01c/1.png": GOOD["b/1.png"]})
    members = {"cifar-10-batches-py/data_batch_1": cifar_batch(6, "labels", 1, 4),
               "cifar-10-batches-py/batches.meta": pickle.dumps({b"label_names": ["plane", "c\x00r", "bird"]})}
    cifar = write_tar(tmp_path / "c.tar", members)
    for source, words in [(folders, "U+0001"), (cifar, "U+0000")]:
        with pytest.raises(DatasetError) as info:
            inspect_dataset(source)
        assert info.value.field == "classes" and words in info.value.message


def test_undecodable_byte_class_names_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    path.write_bytes(npz_bytes(x=X, y=Y, classes=np.array([b"ok", b"\xff\xfe"])))
    with pytest.raises(DatasetError) as info:
        inspect_dataset(path)
    assert info.value.field == "classes" and "UTF-8" in info.value.message
