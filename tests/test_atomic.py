"""Atomic writes: a file appears whole or not at all, and a failed write leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.atomic import atomic_path, write_atomic


def test_a_write_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "arrays.npz"
    target.write_bytes(b"old")
    write_atomic(target, lambda f: np.savez_compressed(f, x=np.arange(3)))
    with np.load(target) as data:
        assert data["x"].tolist() == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["arrays.npz"]  # np.savez added no suffix of its own


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")

    def fail(f) -> None:
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomic(target, fail)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_the_temporary_is_unique_and_not_taken_for_a_finished_file(tmp_path: Path) -> None:
    target = tmp_path / "entry.safetensors"
    with atomic_path(target) as first, atomic_path(target) as second:
        assert first != second and first.parent == tmp_path
        assert not list(tmp_path.glob("*.safetensors"))  # listings by suffix skip writes in progress
        first.write_bytes(b"a")
        second.write_bytes(b"b")
    assert target.read_bytes() == b"a"  # the last to finish wins, whole
