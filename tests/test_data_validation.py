"""Invalid array contents give a DatasetError naming the array at fault, with a hint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.data import DatasetError, DatasetTooLarge, LoadLimits, load_dataset
from tests.hostile_files import BAD_LABELS, X, Y, creates_marker, non_finite_pixels, npz_bytes


def save(tmp_path: Path, **arrays: np.ndarray) -> Path:
    path = tmp_path / "d.npz"
    path.write_bytes(npz_bytes(**arrays))
    return path


def error_for(path: Path | str, **kwargs: object) -> DatasetError:
    with pytest.raises(DatasetError) as info:
        load_dataset(path, **kwargs)
    assert info.value.message and info.value.hint
    return info.value


@pytest.mark.parametrize(
    "arrays,field,words",
    [
        ({"x": X, "y": BAD_LABELS["wrong length"]}, "y", "6 images but y has 5 labels"),
        ({"x": X, "y": Y, "x_test": X[:2], "y_test": Y[:3]}, "y_test", "2 images but y_test has 3"),
        ({"x": X, "y": np.zeros(6, int)}, "y", "needs at least 2"),
        ({"x": X, "y": Y, "classes": np.array(["a", "b", "c"])}, "y", "class 'c' has no training samples"),
        ({"x": X, "y": np.array([0, 0, 0, 2, 2, 2])}, "y", "class '1' has no training samples"),
        ({"x": X, "y": Y, "classes": np.array(["only"])}, "y", "outside 0..0"),
        ({"x": X, "y": BAD_LABELS["negative"]}, "y", "label -1"),
        ({"x": X, "y": BAD_LABELS["float"]}, "y", "non-integer"),
        ({"x": X, "y": BAD_LABELS["one-hot"]}, "y", "one class index per image"),
        ({"x": X, "y": BAD_LABELS["out of range"]}, "y", "labels go up to"),
        ({"x": X, "y": Y, "classes": np.array(["a", "a"])}, "classes", "not unique"),
        ({"x": X, "y": Y, "classes": np.array([1, 2])}, "classes", "string array"),
        ({"x": np.zeros((6, 4, 4, 4), np.uint8), "y": Y}, "x", "not an image batch"),
        ({"x": np.zeros((6, 16), np.uint8), "y": Y}, "x", "not an image batch"),
        ({"x": np.zeros((6, 0, 4), np.uint8), "y": Y}, "x", "zero-size"),
        ({"x": np.full((6, 4, 4), 300, np.int32), "y": Y}, "x", "outside 0..255"),
        ({"x": np.zeros((6, 4, 4), complex), "y": Y}, "x", "dtype complex"),
        ({"x": np.zeros((0, 4, 4), np.uint8), "y": Y[:0]}, "x", "no training images"),
        ({"x": X, "y": Y, "x_test": np.zeros((2, 5, 5), np.uint8), "y_test": Y[:2]}, "x_test", "but training"),
        ({"x": X, "y": Y, "x_test": X}, "y_test", "only one of"),
        ({"images": X, "labels": Y}, "x", "needs arrays 'x' and 'y'"),
    ],
)
def test_bad_arrays(tmp_path: Path, arrays: dict[str, np.ndarray], field: str, words: str) -> None:
    err = error_for(save(tmp_path, **arrays))
    assert err.field == field
    assert words in err.message


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_pixels(tmp_path: Path, bad: float) -> None:
    x = non_finite_pixels(bad)
    err = error_for(save(tmp_path, x=x, y=Y))
    assert err.field == "x" and "index 4" in err.message
    err = error_for(save(tmp_path, x=np.zeros_like(x), y=Y, x_test=x, y_test=Y))
    assert err.field == "x_test"


def test_pickled_object_array_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    labels = np.array([creates_marker(marker)] * 6, dtype=object)
    err = error_for(save(tmp_path, x=X, y=labels))
    assert err.field == "y" and "pickled object arrays are not accepted" in err.message
    assert not marker.exists()


def test_limits(tmp_path: Path) -> None:
    path = save(tmp_path, x=np.zeros((6, 40, 40), np.uint8), y=Y)
    for limits, field in [(LoadLimits(max_samples=5), "x"), (LoadLimits(max_image_side=32), "x"),
                          (LoadLimits(max_decoded_bytes=6 * 1600 * 4 - 1), "x")]:
        with pytest.raises(DatasetTooLarge) as info:
            load_dataset(path, limits=limits)
        assert info.value.field == field
    assert load_dataset(path, limits=LoadLimits(max_samples=6, max_image_side=40)).num_classes == 2


def test_bad_sources_and_parameters(tmp_path: Path) -> None:
    assert error_for(tmp_path / "missing.npz").field == "file"
    err = error_for("builtin:nope")
    assert err.field == "file" and "builtin:digits" in err.hint
    (tmp_path / "notes.txt").write_text("hello")
    assert "not a zip, tar" in error_for(tmp_path / "notes.txt").message
    assert error_for(save(tmp_path, x=X, y=Y), test_fraction=1.0).field == "test_fraction"


def test_error_renders_for_problem_json() -> None:
    err = DatasetError("x is bad", field="x", hint="fix it")
    assert (err.message, err.field, err.hint) == ("x is bad", "x", "fix it")
    assert str(err) == "x is bad. Hint: fix it"
    assert issubclass(DatasetTooLarge, DatasetError)
