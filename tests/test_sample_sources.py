"""Every loaded sample keeps a stable source id (issue 19): the member path of an image file, or FILE[ROW] for a
file that holds many samples, carried through the held-out split, subsets and the decoded cache."""

from __future__ import annotations

import csv
import gzip
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from engine.data import load_dataset, preview_samples
from engine.data.cache import DecodedCache
from engine.data.export import save_npz
from engine.data.imagefolder_zip import write_dataset_zip
from engine.data.sources import Sources
from engine.pipeline.distill import run_distill
from engine.pipeline.distill_config import DistillConfig, InitConfig
from engine.pipeline.prune import run_prune
from engine.pipeline.prune_config import ProxyConfig, PruneConfig
from engine.select.config import SelectionConfig
from tests.test_data_loaders import class_images, cifar_batch, idx_bytes, tiny_idx, write_tar, write_zip


def test_an_image_folder_names_each_sample_by_its_member_path(tmp_path: Path) -> None:
    members = class_images("train/", {"cat": 3, "dog": 2}) | class_images("test/", {"cat": 1, "dog": 1})
    ds = load_dataset(write_zip(tmp_path / "pets.zip", members))
    assert ds.source_names() == ["train/cat/0.png", "train/cat/1.png", "train/cat/2.png", "train/dog/0.png",
                                 "train/dog/1.png"]
    assert ds.test_sources.names() == ["test/cat/0.png", "test/dog/0.png"]
    # The name matches the pixels: image i of class c was written with value 10 * c + i.
    for i, name in enumerate(ds.source_names()):
        c, k = ds.classes.index(name.split("/")[1]), int(name.rsplit("/", 1)[1].split(".")[0])
        assert round(float(ds.x_train[i].max()) * 255) == 10 * c + k


def test_a_held_out_split_keeps_the_rows_of_the_source(tmp_path: Path) -> None:
    x = np.arange(40, dtype=np.uint8).reshape(40, 1, 1, 1).repeat(2, 2).repeat(2, 3)
    y = np.arange(40) % 4
    ds = load_dataset(save_npz(tmp_path / "rows.npz", x, y))
    assert ds.split.source == "held_out"
    rows = [int(n.removeprefix("x[").removesuffix("]")) for n in ds.source_names()]
    test_rows = [int(n.removeprefix("x[").removesuffix("]")) for n in ds.test_sources.names()]
    assert sorted(rows + test_rows) == list(range(40)) and not set(rows) & set(test_rows)
    # Row r of the file holds pixel value r, so each id points at its own sample.
    assert [round(float(v) * 255) for v in ds.x_train[:, 0, 0, 0]] == rows
    assert [round(float(v) * 255) for v in ds.x_test[:, 0, 0, 0]] == test_rows
    # A subset (a job's kept indices) names the same samples.
    kept = np.array([5, 0, 7])
    assert ds.with_train_subset(kept).source_names() == ds.source_names(kept) == [f"x[{rows[i]}]" for i in kept]


def test_idx_cifar_and_builtin_name_their_files_and_rows(tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name, arr in tiny_idx(n_train=4, n_test=2).items():
        (folder / f"{name}.gz").write_bytes(gzip.compress(idx_bytes(arr)))
    ds = load_dataset(folder)
    assert ds.source_names() == [f"train-images-idx3-ubyte.gz[{i}]" for i in range(4)]
    assert ds.test_sources.names() == ["t10k-images-idx3-ubyte.gz[0]", "t10k-images-idx3-ubyte.gz[1]"]

    members = {f"cifar-10-batches-py/data_batch_{i}": cifar_batch(2, "labels", i, 4) for i in (2, 1)}
    members["cifar-10-batches-py/test_batch"] = cifar_batch(1, "labels", 9, 4)
    cifar = load_dataset(write_tar(tmp_path / "cifar.tar.gz", members, "w:gz"))
    assert cifar.source_names() == ["data_batch_1[0]", "data_batch_1[1]", "data_batch_2[0]", "data_batch_2[1]"]
    assert cifar.test_sources.names() == ["test_batch[0]"]

    digits = load_dataset("builtin:digits")
    assert len(digits.source_names()) == len(digits.y_train) and digits.source_names()[0].startswith("digits[")


def test_the_decoded_cache_keeps_the_sources(tmp_path: Path) -> None:
    members = class_images("", {"a": 2, "b": 2})
    path = write_zip(tmp_path / "ab.zip", members)
    cache = DecodedCache(tmp_path / "cache", 10**8)
    first = cache.get_or_load("k", lambda: load_dataset(path))
    again = cache.get_or_load("k", lambda: pytest.fail("served from the cache"))
    assert cache.hits == 1 and again.source_names() == first.source_names()
    assert again.test_sources.names() == first.test_sources.names()
    assert sorted(first.source_names() + first.test_sources.names()) == ["a/0.png", "a/1.png", "b/0.png", "b/1.png"]


def test_sources_of_many_files_concatenate_and_take() -> None:
    joined = Sources.concat([Sources.rows("a", 2), Sources.members(["b.png", "c.png"])])
    assert joined.names() == ["a[0]", "a[1]", "b.png", "c.png"]
    assert joined.take(np.array([3, 0])).names() == ["c.png", "a[0]"]
    assert joined.is_member(2) and not joined.is_member(1)


def test_a_prune_job_names_what_it_kept_and_hands_back_the_upload_s_own_files(tmp_path: Path) -> None:
    members = class_images("train/", {"cat": 12, "dog": 12}) | class_images("test/", {"cat": 2, "dog": 2})
    upload = write_zip(tmp_path / "pets.zip", members)
    dataset = load_dataset(upload)
    config = PruneConfig(selection=SelectionConfig(keep=0.25), proxy=ProxyConfig(width=4, epochs=1), evaluation=None,
                         device="cpu")
    result = run_prune(dataset, config)
    out = tmp_path / "out"
    result.write(out, dataset, origin=upload)

    with open(out / "kept.csv", newline="") as f:
        kept = list(csv.DictReader(f))
    assert len(kept) == len(result.indices) == 6
    assert [int(r["rank"]) for r in kept] == sorted(int(r["rank"]) for r in kept)  # most important first
    assert {int(r["index"]) for r in kept} == set(result.indices.tolist())
    for row in kept:
        assert row["source"] == dataset.source_names()[int(row["index"])]
        assert row["source"].startswith(f"train/{row['class_name']}/") and row["class_name"] in ("cat", "dog")
    with open(out / "scores.csv", newline="") as f:
        scores = list(csv.DictReader(f))
    assert [r["source"] for r in scores] == dataset.source_names()
    assert {r["source"] for r in scores if r["selected"] == "1"} == {r["source"] for r in kept}

    samples = json.loads((out / "samples.json").read_text())
    assert {s["source"] for s in samples["kept"]} <= {r["source"] for r in kept}
    assert not {s["source"] for s in samples["pruned"]} & {r["source"] for r in kept}
    assert all(s["image"].startswith("data:image/png;base64,") for s in samples["kept"] + samples["pruned"])

    # subset.zip: the kept files byte for byte, and the test split, as a dataset Condense reads back.
    with zipfile.ZipFile(out / "subset.zip") as archive:
        names = set(archive.namelist())
        assert {r["source"] for r in kept} | {n for n in members if n.startswith("test/")} == names
        assert all(archive.read(n) == members[n] for n in names)
    again = load_dataset(out / "subset.zip")
    assert sorted(again.source_names()) == sorted(r["source"] for r in kept) and len(again.y_test) == 4


def test_rows_of_an_array_upload_become_png_files_named_by_their_row(tmp_path: Path) -> None:
    x = (np.arange(24, dtype=np.uint8) * 10).reshape(24, 1, 1, 1).repeat(3, 2).repeat(3, 3)
    dataset = load_dataset(save_npz(tmp_path / "rows.npz", x, np.arange(24) % 2, x_test=x[:4], y_test=np.arange(4) % 2,
                                    classes=["even", "odd"]))
    path = write_dataset_zip(tmp_path / "subset.zip", dataset, np.array([3, 4]), origin=tmp_path / "rows.npz")
    again = load_dataset(path)
    assert sorted(zipfile.ZipFile(path).namelist())[-2:] == ["train/even/x_4.png", "train/odd/x_3.png"]
    # PNGs of uint8 pixels are exact: the subset's pixels are the upload's rows 4 and 3.
    np.testing.assert_array_equal(np.sort(again.x_train[:, 0, 0, 0]), np.sort(dataset.x_train[[3, 4], 0, 0, 0]))


def test_a_distill_job_writes_its_images_as_class_folders(tmp_path: Path, digits) -> None:
    config = DistillConfig(method="dm", ipc=2, iterations=1, width=8, evaluation=None, device="cpu",
                           init=InitConfig(mode="real"), checkpoint_every=10**9)
    result = run_distill(digits, config)
    result.write(tmp_path)
    with zipfile.ZipFile(tmp_path / "synthetic_png.zip") as archive:
        names = sorted(archive.namelist())
    assert names == sorted(f"{c}/{c}_{k:04d}.png" for c in digits.classes for k in range(2))
    back = load_dataset(tmp_path / "synthetic_png.zip")
    assert back.num_classes == 10 and len(back.y_train) + len(back.y_test) == 20


def test_a_dataset_s_preview_names_each_image_and_matches_its_pixels(tmp_path: Path) -> None:
    x = (np.arange(30, dtype=np.uint8) * 8).reshape(30, 1, 1, 1).repeat(2, 2).repeat(2, 3)
    path = save_npz(tmp_path / "rows.npz", x, np.arange(30) % 3, classes=["a", "b", "c"])
    samples = preview_samples(path, per_class=2)
    dataset = load_dataset(path)
    assert [c for c, _, _ in samples] == ["a", "a", "b", "b", "c", "c"]
    for _, source, pixels in samples:
        row = int(source.removeprefix("x[").removesuffix("]"))
        assert round(float(pixels[0, 0, 0]) * 255) == 8 * row and source in dataset.source_names()
