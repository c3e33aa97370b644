"""Hostile or broken archives and files are refused with a DatasetError naming the member at fault."""

from __future__ import annotations

import gzip
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest

from engine.data import DatasetError, DatasetTooLarge, LoadLimits, load_dataset
from tests.hostile_files import (
    CIFAR_BATCH_MEMBER,
    GOOD,
    RunsCode,
    cifar_batch,
    creates_marker,
    png,
    png_header,
    special_tar_member,
    write_tar,
    write_zip,
    zip_with_bad_crc,
    zip_with_symlink,
)


def error_for(path: Path, error: type[DatasetError] = DatasetError, **kwargs: object) -> DatasetError:
    with pytest.raises(error) as info:
        load_dataset(path, **kwargs)
    assert info.value.message and info.value.hint
    return info.value


# --- image content -------------------------------------------------------------------------------


def test_mixed_image_sizes_name_an_example(tmp_path: Path) -> None:
    members = GOOD | {"b/9.png": png(np.zeros((5, 6), np.uint8))}
    err = error_for(write_zip(tmp_path / "d.zip", members))
    assert err.field == "archive member b/9.png"
    assert "6x5" in err.message and "a/0.png is 6x6" in err.message


def test_non_image_member(tmp_path: Path) -> None:
    err = error_for(write_zip(tmp_path / "d.zip", GOOD | {"a/notes.txt": b"hello"}))
    assert err.field == "archive member a/notes.txt" and "not an image" in err.message


@pytest.mark.parametrize("data", [GOOD["a/0.png"][:40], b"definitely not a png"])
def test_corrupt_png(tmp_path: Path, data: bytes) -> None:
    err = error_for(write_zip(tmp_path / "d.zip", GOOD | {"b/0.png": data}))
    assert err.field == "archive member b/0.png" and "image" in err.message


def test_sixteen_bit_png_is_refused(tmp_path: Path) -> None:
    err = error_for(write_zip(tmp_path / "d.zip", GOOD | {"a/0.png": png(np.zeros((6, 6), np.uint16))}))
    assert err.field == "archive member a/0.png" and "16/32-bit" in err.message


@pytest.mark.parametrize("width,height", [(100_000, 100_000), (2000, 10)])
def test_absurd_image_dimensions_are_refused_before_decoding(tmp_path: Path, width: int, height: int) -> None:
    data = png_header(width, height)
    assert len(data) < 100
    err = error_for(write_zip(tmp_path / "d.zip", GOOD | {"a/huge.png": data}), DatasetTooLarge)
    assert err.field == "archive member a/huge.png"


def test_image_side_limit(tmp_path: Path) -> None:
    err = error_for(write_zip(tmp_path / "d.zip", GOOD), DatasetTooLarge, limits=LoadLimits(max_image_side=5))
    assert err.field.startswith("archive member") and "larger than the limit of 5" in err.message


# --- layout --------------------------------------------------------------------------------------


def test_empty_class_folder_is_named(tmp_path: Path) -> None:
    members = {f"train/{k}": v for k, v in GOOD.items()} | {"train/zebra/": b""}
    err = error_for(write_zip(tmp_path / "d.zip", members))
    assert err.field == "y" and "class 'zebra' has no training samples" in err.message


def test_test_class_without_training_folder(tmp_path: Path) -> None:
    members = {f"train/{k}": v for k, v in GOOD.items()} | {"test/zebra/0.png": GOOD["a/0.png"]}
    err = error_for(write_zip(tmp_path / "d.zip", members))
    assert err.field == "archive member test/zebra/0.png"


def test_image_outside_class_folder(tmp_path: Path) -> None:
    err = error_for(write_zip(tmp_path / "d.zip", GOOD | {"stray.png": GOOD["a/0.png"]}))
    assert err.field == "archive member stray.png" and "class folder" in err.message


def test_empty_archive(tmp_path: Path) -> None:
    assert "no images" in error_for(write_zip(tmp_path / "d.zip", {})).message


# --- archive safety ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../evil.png", "a/../../evil.png", "a\\..\\..\\evil.png"])
@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_path_traversal(tmp_path: Path, name: str, kind: str) -> None:
    members = GOOD | {name: GOOD["a/0.png"]}
    path = write_zip(tmp_path / "d.zip", members) if kind == "zip" else write_tar(tmp_path / "d.tar", members)
    err = error_for(path)
    assert err.field == f"archive member {name}" and "outside the archive" in err.message


@pytest.mark.parametrize("name", ["/etc/evil.png", "C:/evil.png"])
@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_absolute_path(tmp_path: Path, name: str, kind: str) -> None:
    members = GOOD | {name: GOOD["a/0.png"]}
    path = write_zip(tmp_path / "d.zip", members) if kind == "zip" else write_tar(tmp_path / "d.tar", members)
    err = error_for(path)
    assert err.field == f"archive member {name}" and "absolute path" in err.message


@pytest.mark.parametrize("kind,words", [(tarfile.SYMTYPE, "link"), (tarfile.LNKTYPE, "link"),
                                        (tarfile.CHRTYPE, "special file"), (tarfile.FIFOTYPE, "special file")])
def test_tar_links_and_devices(tmp_path: Path, kind: bytes, words: str) -> None:
    members = GOOD | {"a/link.png": special_tar_member("a/link.png", kind)}
    err = error_for(write_tar(tmp_path / "d.tar.gz", members, "w:gz"))
    assert err.field == "archive member a/link.png" and words in err.message


def test_zip_symlink(tmp_path: Path) -> None:
    path = tmp_path / "d.zip"
    path.write_bytes(zip_with_symlink(GOOD, "a/link.png", "/etc/passwd"))
    assert error_for(path).field == "archive member a/link.png"


def test_zip_bomb_member(tmp_path: Path) -> None:
    err = error_for(write_zip(tmp_path / "d.zip", GOOD | {"a/bomb.png": bytes(4 << 20)}), DatasetTooLarge)
    assert err.field == "archive member a/bomb.png" and "decompression bomb" in err.message


def test_tar_gz_bomb(tmp_path: Path) -> None:
    err = error_for(write_tar(tmp_path / "d.tar.gz", GOOD | {"a/bomb.png": bytes(8 << 20)}, "w:gz"), DatasetTooLarge)
    assert err.field == "file" and "decompression bomb" in err.message


def test_uncompressed_size_limit(tmp_path: Path) -> None:
    err = error_for(write_tar(tmp_path / "d.tar", GOOD), DatasetTooLarge, limits=LoadLimits(max_uncompressed_bytes=200))
    assert err.field == "file"


def test_too_many_members(tmp_path: Path) -> None:
    err = error_for(write_zip(tmp_path / "d.zip", GOOD), DatasetTooLarge, limits=LoadLimits(max_archive_members=5))
    assert err.field == "file" and "more than 5 members" in err.message
    assert load_dataset(tmp_path / "d.zip", limits=LoadLimits(max_archive_members=6)).num_classes == 2


def test_corrupted_zip_member(tmp_path: Path) -> None:
    path = tmp_path / "d.zip"
    path.write_bytes(zip_with_bad_crc(GOOD | {"b/9.png": b"\x89PNG" + bytes(200)}, "b/9.png"))
    err = error_for(path)
    assert err.field == "archive member b/9.png" and "cannot be read" in err.message


def test_single_gzip_file_is_not_a_dataset(tmp_path: Path) -> None:
    (tmp_path / "x.gz").write_bytes(gzip.compress(b"data"))
    err = error_for(tmp_path / "x.gz")
    assert err.field == "file" and "single gzip" in err.message


# --- IDX -----------------------------------------------------------------------------------------


def idx_files(images: bytes | None = None) -> dict[str, bytes]:
    x = np.zeros((4, 3, 3), np.uint8)
    files = {
        "train-images-idx3-ubyte": (2051).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in x.shape)
        + x.tobytes(),
        "train-labels-idx1-ubyte": (2049).to_bytes(4, "big") + (4).to_bytes(4, "big") + bytes([0, 1, 0, 1]),
    }
    if images is not None:
        files["train-images-idx3-ubyte"] = images
    return {k + ".gz": gzip.compress(v) for k, v in files.items()}


def write_dir(path: Path, files: dict[str, bytes]) -> Path:
    path.mkdir()
    for name, data in files.items():
        (path / name).write_bytes(data)
    return path


def test_truncated_idx(tmp_path: Path) -> None:
    good = gzip.decompress(idx_files()["train-images-idx3-ubyte.gz"])
    err = error_for(write_dir(tmp_path / "m", idx_files(good[:-5])))
    assert err.field == "file train-images-idx3-ubyte.gz" and "(truncated)" in err.message
    err = error_for(write_zip(tmp_path / "m.zip", idx_files(good[:10])))
    assert err.field == "archive member train-images-idx3-ubyte.gz" and "header" in err.message


def test_idx_wrong_magic_and_cut_gzip(tmp_path: Path) -> None:
    files = idx_files()
    swapped = {"train-images-idx3-ubyte.gz": files["train-labels-idx1-ubyte.gz"],
               "train-labels-idx1-ubyte.gz": files["train-images-idx3-ubyte.gz"]}
    err = error_for(write_dir(tmp_path / "a", swapped))
    assert "magic number 2051" in err.message and err.field == "file train-images-idx3-ubyte.gz"
    cut = files | {"train-labels-idx1-ubyte.gz": files["train-labels-idx1-ubyte.gz"][:-12]}
    assert "truncated gzip" in error_for(write_dir(tmp_path / "b", cut)).message


def test_idx_incomplete_quadruple(tmp_path: Path) -> None:
    files = idx_files()
    err = error_for(write_dir(tmp_path / "a", {"train-images-idx3-ubyte.gz": files["train-images-idx3-ubyte.gz"]}))
    assert "lacks train-labels" in err.message
    half_test = files | {"t10k-images-idx3-ubyte.gz": files["train-images-idx3-ubyte.gz"]}
    err = error_for(write_dir(tmp_path / "b", half_test))
    assert "lacks t10k-labels" in err.message


# --- CIFAR pickles -------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["open", "os.system"])
def test_malicious_cifar_pickle_is_refused_without_running(tmp_path: Path, how: str) -> None:
    marker = tmp_path / "marker"
    payload = creates_marker(marker) if how == "open" else RunsCode(os.system, (f"touch '{marker}'",))
    err = error_for(write_tar(tmp_path / "c.tar.gz", cifar_batch(payload), "w:gz"))
    assert err.field == f"archive member {CIFAR_BATCH_MEMBER}" and "not allowed" in err.message
    assert not marker.exists()


def test_cifar_batch_of_wrong_shape(tmp_path: Path) -> None:
    err = error_for(write_tar(tmp_path / "c.tar", cifar_batch([0, 1], data=np.zeros((2, 10), np.uint8))))
    assert err.field == f"archive member {CIFAR_BATCH_MEMBER}" and "uint8 'data'" in err.message


def test_idx_count_mismatch_names_the_labels_file(tmp_path: Path) -> None:
    labels = (2049).to_bytes(4, "big") + (3).to_bytes(4, "big") + bytes([0, 1, 0])
    files = idx_files() | {"train-labels-idx1-ubyte.gz": gzip.compress(labels)}
    err = error_for(write_dir(tmp_path / "m", files))
    assert err.field == "file train-labels-idx1-ubyte.gz" and "4 images but train-labels has 3" in err.message
