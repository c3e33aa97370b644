"""Upload fields and file headers that the database cannot store, or that overflow fixed-width
arithmetic, are 422s naming the field (on PostgreSQL they used to reach the database, or numpy,
and answer 500); nothing is stored."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.core.db import Database
from tests.hostile_files import GOOD, X, Y, npz_bytes, zip_bytes
from tests.service_fixtures import (  # noqa: F401 - fixtures
    assert_problem,
    backend,
    client,
    db,
    random_npz_bytes,
    settings,
)
from tests.test_api_datasets import assert_nothing_stored, upload

BAD_NAMES = {
    "201 characters": "n" * 201,
    "NUL": "my\x00data",
    "escape sequence": "data\x1b[2J",
    "newline": "two\nlines",
    "blank": "   ",
}


@pytest.mark.parametrize("name", BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_unstorable_dataset_name_is_refused(client: TestClient, settings: Settings, db: Database, name: str) -> None:
    body = assert_problem(upload(client, random_npz_bytes(), name=name), 422, "name")
    assert "1 to 200 characters" in body["detail"]
    assert_nothing_stored(settings, db)


def test_longest_name_and_any_file_name_are_stored(client: TestClient) -> None:
    created = upload(client, random_npz_bytes(seed=1), name="é" * 200)
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "é" * 200
    odd_file = "\x01\x7f" + "ü" * 250 + "\t.npz"
    created = upload(client, random_npz_bytes(seed=2), odd_file)
    assert created.status_code == 201, created.text
    name = created.json()["name"]
    assert 0 < len(name) <= 200 and name.isprintable()


def _idx_zip(image_dims: tuple[int, ...]) -> bytes:
    header = (2051).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in image_dims)
    labels = (2049).to_bytes(4, "big") + (4).to_bytes(4, "big") + bytes([0, 1, 0, 1])
    return zip_bytes({"train-images-idx3-ubyte": header, "train-labels-idx1-ubyte": labels})


@pytest.mark.parametrize("dims", [(4, 2**31, 2**31), (2**16, 2**16, 2**32 - 1)], ids=["wraps to 0", "wraps negative"])
def test_idx_header_whose_size_overflows_int64(
    client: TestClient, settings: Settings, db: Database, dims: tuple[int, ...]
) -> None:
    body = assert_problem(upload(client, _idx_zip(dims), "m.zip"), 422, "archive member train-images-idx3-ubyte")
    assert f"{dims[0] * dims[1] * dims[2]:,} bytes of data" in body["detail"]
    assert_nothing_stored(settings, db)


def _npy_of(arr: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, arr)
    return out.getvalue()


def test_npz_header_declaring_more_than_its_member(client: TestClient, settings: Settings, db: Database) -> None:
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "|u1", "fortran_order": False, "shape": (2**40, 32, 32)})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("x.npy", head.getvalue() + bytes(96))
        zf.writestr("y.npy", _npy_of(Y))
    body = assert_problem(upload(client, buffer.getvalue()), 422, "x")
    assert "its member holds 96 bytes" in body["detail"]
    assert_nothing_stored(settings, db)


CLASS_NAMES = {
    "npz NUL": ("d.npz", npz_bytes(x=X, y=Y, classes=np.array(["cat", "d\x00g"]))),
    "npz empty": ("d.npz", npz_bytes(x=X, y=Y, classes=np.array(["cat", ""]))),
    "npz 300 characters": ("d.npz", npz_bytes(x=X, y=Y, classes=np.array(["cat", "d" * 300]))),
    "npz not UTF-8": ("d.npz", npz_bytes(x=X, y=Y, classes=np.array([b"cat", b"\xff"]))),
    "folder with a control character": ("d.zip", zip_bytes({k.replace("b/", "b\x07/"): v for k, v in GOOD.items()})),
}


@pytest.mark.parametrize("case", CLASS_NAMES.values(), ids=CLASS_NAMES.keys())
def test_unstorable_class_name_is_refused(
    client: TestClient, settings: Settings, db: Database, case: tuple[str, bytes]
) -> None:
    filename, content = case
    body = assert_problem(upload(client, content, filename), 422, "classes")
    assert body["type"] == "urn:condense:problem:dataset-invalid" and body["errors"][0]["hint"]
    assert_nothing_stored(settings, db)
