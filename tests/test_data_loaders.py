"""Round trips through every supported format, the held-out split, hashing, export and subsets."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.data import (
    BUILTIN_DATASETS,
    ImageDataset,
    inspect_dataset,
    load_dataset,
    save_npz,
    subsample_per_class,
)


def png(arr: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def write_tar(path: Path, members: dict[str, bytes], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def class_images(prefix: str, classes: dict[str, int], size: int = 6, rgb: bool = False) -> dict[str, bytes]:
    """``count`` images per class whose pixel value encodes (class, index), as PNG members."""
    members = {}
    for c, (name, count) in enumerate(classes.items()):
        for i in range(count):
            shape = (size, size, 3) if rgb else (size, size)
            members[f"{prefix}{name}/{i}.png"] = png(np.full(shape, 10 * c + i, np.uint8))
    return members


# --- npz ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["nhw", "nhwc", "nchw"])
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_npz_layouts_round_trip(tmp_path: Path, layout: str, dtype: str) -> None:
    rng = np.random.default_rng(0)
    channels = 1 if layout == "nhw" else 3
    pixels = rng.integers(0, 256, (20, channels, 5, 7), dtype=np.uint8)
    stored = {"nhw": pixels[:, 0], "nhwc": pixels.transpose(0, 2, 3, 1), "nchw": pixels}[layout]
    stored = stored if dtype == "uint8" else stored.astype(np.float32) / 255
    y = np.repeat(np.arange(4), 5)
    np.savez(tmp_path / "d.npz", x=stored, y=y, x_test=stored[:8], y_test=y[:8], classes=np.array(list("abcd")))

    ds = load_dataset(tmp_path / "d.npz")

    assert isinstance(ds, ImageDataset)
    assert ds.format == "npz" and ds.name == "d" and ds.split.source == "provided"
    assert ds.x_train.dtype == np.float32 and ds.x_train.flags.c_contiguous
    assert ds.image_shape == (channels, 5, 7) and ds.classes == ["a", "b", "c", "d"]
    np.testing.assert_allclose(ds.x_train, pixels / 255, atol=1e-6)
    assert ds.y_train.dtype == np.int64 and ds.y_train.tolist() == y.tolist()
    assert len(ds.x_test) == 8
    assert len(ds.mean) == channels and np.allclose(ds.mean, (pixels / 255).mean(axis=(0, 2, 3)))
    assert np.allclose(ds.std, (pixels / 255).std(axis=(0, 2, 3)))


def test_npz_floats_kept_and_classes_default_to_numbers(tmp_path: Path) -> None:
    x = np.linspace(-3, 3, 10 * 4 * 4, dtype=np.float32).reshape(10, 4, 4)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(10) % 2)
    ds = load_dataset(tmp_path / "d.npz")
    assert ds.classes == ["0", "1"] and ds.split.source == "held_out"
    both = np.concatenate([ds.x_train, ds.x_test]).ravel()
    np.testing.assert_array_equal(np.sort(both), x.ravel())  # float pixels are not rescaled


def test_save_npz_round_trip_is_exact(tmp_path: Path) -> None:
    x8 = np.random.default_rng(1).integers(0, 256, (12, 3, 4, 4), dtype=np.uint8)
    x, y = x8.astype(np.float32) / 255, np.arange(12) % 3
    path = save_npz(tmp_path / "coreset.npz", x, y, x_test=x[:3], y_test=y[:3], classes=["a", "b", "c"])
    with np.load(path) as stored:
        assert stored["x"].dtype == np.uint8  # exactly representable -> stored compactly
    back = load_dataset(path)
    np.testing.assert_array_equal(back.x_train, x)
    assert back.classes == ["a", "b", "c"] and back.y_test.tolist() == [0, 1, 2]

    digits = load_dataset("builtin:digits")  # values k/16 are not k/255: kept as float32
    save_npz(path, digits.x_train, digits.y_train, x_test=digits.x_test, y_test=digits.y_test)
    with np.load(path) as stored:
        assert stored["x"].dtype == np.float32
    np.testing.assert_array_equal(load_dataset(path).x_train, digits.x_train)
    assert not list(tmp_path.glob(".*.tmp"))


# --- image folders -------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix,mode", [(".zip", None), (".tar", "w"), (".tar.gz", "w:gz"), (".tgz", "w:gz")])
def test_imagefolder_archives_with_train_and_test(tmp_path: Path, suffix: str, mode: str | None) -> None:
    members = class_images("train/", {"dog": 3, "cat": 4}) | class_images("test/", {"cat": 2, "dog": 1})
    path = tmp_path / f"pets{suffix}"
    write_zip(path, members) if mode is None else write_tar(path, members, mode)

    ds = load_dataset(path)

    assert ds.format == "imagefolder" and ds.name == "pets"
    assert ds.classes == ["cat", "dog"]  # alphabetical, whatever the archive order
    assert ds.class_counts("train") == [4, 3] and ds.class_counts("test") == [2, 1]
    assert ds.image_shape == (1, 6, 6) and ds.split.source == "provided"
    # pixel value 10*c + i with c the position in the dict above: cat images are 10..13
    assert sorted(np.round(ds.x_train[ds.y_train == 0, 0, 0, 0] * 255).astype(int).tolist()) == [10, 11, 12, 13]


def test_imagefolder_plain_layout_wrapper_folder_and_junk(tmp_path: Path) -> None:
    members = class_images("mydata/", {"a": 3, "b": 3, "c": 2}, rgb=True)
    members |= {"__MACOSX/mydata/a/._0.png": b"junk", "mydata/.DS_Store": b"junk", "mydata/b/Thumbs.db": b"x"}
    ds = load_dataset(write_zip(tmp_path / "plain.zip", members), test_fraction=0.5, split_seed=3)
    assert ds.classes == ["a", "b", "c"] and ds.image_shape == (3, 6, 6)
    assert ds.split.source == "held_out" and ds.split.seed == 3
    assert ds.class_counts("test") == [2, 2, 1] and ds.class_counts("train") == [1, 1, 1]


def test_imagefolder_mixed_grey_and_rgb_becomes_rgb_and_other_formats_decode(tmp_path: Path) -> None:
    grey = np.full((4, 4), 200, np.uint8)
    members = {"a/0.png": png(grey), "a/1.bmp": png(grey, "BMP"), "b/0.png": png(np.full((4, 4, 3), 50, np.uint8)),
               "b/1.gif": png(grey, "GIF"), "b/2.jpg": png(np.full((4, 4, 3), 50, np.uint8), "JPEG")}
    ds = load_dataset(write_zip(tmp_path / "mixed.zip", members), test_fraction=0.3)
    x = np.concatenate([ds.x_train, ds.x_test])
    assert x.shape[1:] == (3, 4, 4)
    grey_rows = x[np.isclose(x[:, 0, 0, 0], 200 / 255)]
    assert len(grey_rows) == 3 and np.allclose(grey_rows, 200 / 255)  # grey replicated into R, G and B


def test_imagefolder_directory(tmp_path: Path) -> None:
    for name, data in class_images("train/", {"x": 2, "y": 2}).items():
        (tmp_path / "d" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "d" / name).write_bytes(data)
    ds = load_dataset(tmp_path / "d")
    assert ds.format == "imagefolder" and ds.name == "d" and ds.classes == ["x", "y"]
    assert ds.content_hash == load_dataset(tmp_path / "d").content_hash


def test_detect_format_by_content_not_extension(tmp_path: Path) -> None:
    images = write_zip(tmp_path / "really_images.npz", class_images("", {"a": 2, "b": 2}))
    assert inspect_dataset(images).format == "imagefolder"
    assert load_dataset(images).num_classes == 2
    arrays = tmp_path / "arrays.zip"
    np.savez(tmp_path / "tmp.npz", x=np.zeros((4, 3, 3), np.uint8), y=np.array([0, 0, 1, 1]))
    os.replace(tmp_path / "tmp.npz", arrays)
    assert inspect_dataset(arrays).format == "npz"
    assert inspect_dataset("builtin:digits").format == "builtin"


# --- IDX -----------------------------------------------------------------------------------------


def idx_bytes(arr: np.ndarray) -> bytes:
    magic = 2051 if arr.ndim == 3 else 2049
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def tiny_idx(n_train: int = 30, n_test: int = 10) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 5, 4), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 3,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 5, 4), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.arange(n_test, dtype=np.uint8) % 3,
    }


@pytest.mark.parametrize("container", ["dir_gz", "dir_raw", "zip", "tar_gz"])
def test_idx_quadruple(tmp_path: Path, container: str) -> None:
    arrays = tiny_idx()
    gz = container != "dir_raw"
    files = {name + (".gz" if gz else ""): gzip.compress(idx_bytes(a)) if gz else idx_bytes(a)
             for name, a in arrays.items()}
    if container.startswith("dir"):
        path = tmp_path / "mnist"
        path.mkdir()
        for name, data in files.items():
            (path / name).write_bytes(data)
    elif container == "zip":
        path = write_zip(tmp_path / "mnist.zip", {f"mnist/{k}": v for k, v in files.items()})
    else:
        path = write_tar(tmp_path / "mnist.tar.gz", files, "w:gz")

    ds = load_dataset(path)

    assert ds.format == "idx" and ds.name == "mnist" and ds.classes == ["0", "1", "2"]
    assert ds.image_shape == (1, 5, 4) and ds.split.source == "provided"
    np.testing.assert_array_equal(ds.x_train[:, 0], arrays["train-images-idx3-ubyte"] / np.float32(255))
    assert ds.y_test.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()


def test_idx_without_test_pair_holds_out(tmp_path: Path) -> None:
    arrays = tiny_idx()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        (tmp_path / name).write_bytes(idx_bytes(arrays[name]))
    ds = load_dataset(tmp_path)
    assert ds.split.source == "held_out" and len(ds.y_train) + len(ds.y_test) == 30


def shared_datasets() -> Path | None:
    if env := os.environ.get("CONDENSE_SHARED_DATASETS"):
        return Path(env)
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / "datasets").is_dir():
            return parent / "shared" / "datasets"
    return None


def test_real_mnist() -> None:
    root = shared_datasets()
    if root is None or not (root / "mnist").is_dir():
        pytest.skip("real MNIST not found: set CONDENSE_SHARED_DATASETS or place shared/datasets/mnist above the repo")
    ds = load_dataset(root / "mnist")
    assert ds.format == "idx" and ds.image_shape == (1, 28, 28)
    assert ds.class_counts("train") == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert ds.class_counts("test") == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert ds.mean[0] == pytest.approx(0.1307, abs=1e-4) and ds.std[0] == pytest.approx(0.3081, abs=1e-4)


# --- CIFAR ---------------------------------------------------------------------------------------


def cifar_batch(n: int, label_key: str, seed: int, protocol: int) -> bytes:
    rng = np.random.default_rng(seed)
    batch = {b"batch_label": b"synthetic", b"data": rng.integers(0, 256, (n, 3 * 8 * 8), dtype=np.uint8),
             label_key.encode(): (np.arange(n) % 3).tolist(), b"filenames": [b"f.png"] * n}
    return pickle.dumps(batch, protocol=protocol)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar10_layout(tmp_path: Path, protocol: int) -> None:
    members = {f"cifar-10-batches-py/data_batch_{i}": cifar_batch(6, "labels", i, protocol) for i in (2, 1)}
    members["cifar-10-batches-py/test_batch"] = cifar_batch(3, "labels", 9, protocol)
    members["cifar-10-batches-py/batches.meta"] = pickle.dumps(
        {b"label_names": ["plane", "car", "bird"], b"num_vis": 192}, protocol=protocol)
    ds = load_dataset(write_tar(tmp_path / "cifar-10-python.tar.gz", members, "w:gz"))

    assert ds.format == "cifar" and ds.name == "cifar-10-python"
    assert ds.classes == ["plane", "car", "bird"] and ds.image_shape == (3, 8, 8)
    first = pickle.loads(members["cifar-10-batches-py/data_batch_1"])[b"data"]  # batch 1 comes first
    np.testing.assert_array_equal(ds.x_train[:6].reshape(6, -1), first / np.float32(255))
    assert len(ds.y_train) == 12 and len(ds.y_test) == 3


def test_cifar100_fine_labels(tmp_path: Path) -> None:
    members = {"cifar-100-python/train": cifar_batch(9, "fine_labels", 0, 2),
               "cifar-100-python/test": cifar_batch(3, "fine_labels", 1, 2),
               "cifar-100-python/meta": pickle.dumps({b"fine_label_names": ["x", "y", "z"],
                                                      b"coarse_label_names": ["all"]}, protocol=2)}
    ds = load_dataset(write_tar(tmp_path / "c100.tar.gz", members, "w:gz"))
    assert ds.format == "cifar" and ds.classes == ["x", "y", "z"] and ds.class_counts() == [3, 3, 3]


# --- builtin, split, hash, subsets ------------------------------------------------------------


def test_builtin_digits() -> None:
    assert "digits" in BUILTIN_DATASETS
    ds = load_dataset("builtin:digits")
    assert ds.format == "builtin" and ds.name == "digits" and ds.image_shape == (1, 8, 8)
    assert len(ds.y_train) + len(ds.y_test) == 1797 and ds.classes == [str(d) for d in range(10)]
    assert ds.x_train.max() == 1.0 and ds.x_train.min() == 0.0
    assert load_dataset("builtin:digits").content_hash == ds.content_hash


def test_held_out_split_is_stratified_and_reproducible(tmp_path: Path) -> None:
    y = np.r_[np.zeros(50), np.ones(30), np.full(10, 2), [3]].astype(np.int64)
    x = np.arange(len(y), dtype=np.float32)[:, None, None] * np.ones((1, 2, 2), np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    a = load_dataset(tmp_path / "d.npz", test_fraction=0.2, split_seed=7)
    b = load_dataset(tmp_path / "d.npz", test_fraction=0.2, split_seed=7)
    c = load_dataset(tmp_path / "d.npz", test_fraction=0.2, split_seed=8)
    assert a.class_counts("test") == [10, 6, 2, 0] and a.class_counts("train") == [40, 24, 8, 1]
    assert a.split.source == "held_out" and a.split.test_fraction == 0.2 and a.split.seed == 7
    np.testing.assert_array_equal(a.x_test, b.x_test)
    assert not np.array_equal(a.x_test, c.x_test)
    ids = np.concatenate([a.x_train[:, 0, 0, 0], a.x_test[:, 0, 0, 0]])
    assert sorted(ids.tolist()) == list(range(len(y)))  # a partition
    assert np.all(np.diff(a.x_train[:, 0, 0, 0]) > 0)  # source order kept


def test_content_hash_follows_bytes(tmp_path: Path) -> None:
    x, y = np.zeros((6, 3, 3), np.uint8), np.array([0, 0, 0, 1, 1, 1])
    np.savez(tmp_path / "a.npz", x=x, y=y)
    (tmp_path / "b.npz").write_bytes((tmp_path / "a.npz").read_bytes())
    x[0, 0, 0] = 1
    np.savez(tmp_path / "c.npz", x=x, y=y)
    ha, hb, hc = (load_dataset(tmp_path / f"{n}.npz").content_hash for n in "abc")
    assert ha == hb != hc and len(ha) == 64


def test_subsample_per_class() -> None:
    y = np.array([1, 0, 1, 1, 0, 2, 1])
    assert subsample_per_class(y, 2).tolist() == [0, 1, 2, 4, 5]
    picked = subsample_per_class(y, 2, seed=0)
    assert np.bincount(y[picked]).tolist() == [2, 2, 1]
    assert picked.tolist() == subsample_per_class(y, 2, seed=0).tolist()
