"""Hostile and broken uploads over HTTP: each is refused with a specific 4xx problem naming the part
at fault, nothing is unpickled, and nothing is left in the database or the blob store.

The files are the ones the engine tests load (tests/hostile_files.py); here they go through the
real upload path (streaming parser, staging folder, validation, blob store, database).
"""

from __future__ import annotations

import socket
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.core.db import Database
from app.main import create_app
from tests.hostile_files import (
    BAD_LABELS,
    CIFAR_BATCH_MEMBER,
    GOOD,
    X,
    Y,
    cifar_batch,
    creates_marker,
    non_finite_pixels,
    npz_bytes,
    png,
    png_header,
    special_tar_member,
    tar_bytes,
    zip_bytes,
    zip_with_bad_crc,
    zip_with_symlink,
)
from tests.service_fixtures import (  # noqa: F401 - fixtures
    assert_problem,
    backend,
    client,
    db,
    random_npz_bytes,
    served_in_thread,
    settings,
    wait_until,
)
from tests.test_api_datasets import assert_nothing_stored, stored_blobs, upload


@dataclass(frozen=True)
class Hostile:
    """One hostile upload and the answer it must get."""

    filename: str
    build: Callable[[Path], bytes]  # gets the path of a marker file that running its code would create
    status: int
    field: str
    limits: dict[str, Any] = field(default_factory=dict)  # Settings that keep a bomb or count case small


def _member(name: str) -> str:
    return f"archive member {name}"


def _with(name: str, data: bytes | tarfile.TarInfo) -> dict[str, Any]:
    return GOOD | {name: data}


def _const(content: bytes) -> Callable[[Path], bytes]:
    return lambda _marker: content


_NPZ = npz_bytes(x=X, y=Y)
_LABEL_CASES = {
    f"labels {kind}": Hostile("d.npz", _const(npz_bytes(x=X, y=labels)), 422, "y") for kind, labels in BAD_LABELS.items()
}
_PIXEL_CASES = {
    f"pixels {bad}": Hostile("d.npz", _const(npz_bytes(x=non_finite_pixels(bad), y=Y)), 422, "x")
    for bad in (np.nan, np.inf, -np.inf)
}
_LINK_CASES = {
    f"tar {kind}": Hostile(
        "d.tar.gz", _const(tar_bytes(_with("a/link.png", special_tar_member("a/link.png", code)), "w:gz")), 422,
        _member("a/link.png"),
    )
    for kind, code in [("symlink", tarfile.SYMTYPE), ("hardlink", tarfile.LNKTYPE), ("char device", tarfile.CHRTYPE),
                       ("block device", tarfile.BLKTYPE), ("fifo", tarfile.FIFOTYPE)]
}
_PATH_CASES = {
    f"{kind} {name}": Hostile(
        f"d.{kind}", _const(zip_bytes(_with(name, GOOD["a/0.png"])) if kind == "zip" else tar_bytes(_with(name, GOOD["a/0.png"]))),
        422, _member(name),
    )
    for kind, name in [("zip", "../evil.png"), ("tar", "a/../../evil.png"), ("zip", "a\\..\\..\\evil.png"),
                       ("zip", "/etc/evil.png"), ("tar", "/etc/evil.png"), ("tar", "C:/evil.png")]
}

CASES: dict[str, Hostile] = {
    "npz cut in half": Hostile("d.npz", _const(_NPZ[: len(_NPZ) // 2]), 422, "file"),
    "tar.gz cut short": Hostile("d.tar.gz", _const(tar_bytes(GOOD, "w:gz")[:100]), 422, "file"),
    "zip member fails its CRC": Hostile("d.zip", _const(zip_with_bad_crc(_with("b/9.png", b"\x89PNG" + bytes(200)), "b/9.png")), 422, _member("b/9.png")),
    "corrupt png": Hostile("d.zip", _const(zip_bytes(_with("b/0.png", GOOD["a/0.png"][:40]))), 422, _member("b/0.png")),
    "png named .npz": Hostile("d.npz", _const(png(np.zeros((4, 4), np.uint8))), 422, "file"),
    "text named .tar.gz": Hostile("d.tar.gz", _const(b"hello, not an archive\n" * 20), 422, "file"),
    "empty file": Hostile("d.npz", _const(b""), 422, "file"),
    **_PATH_CASES,
    **_LINK_CASES,
    "zip symlink": Hostile("d.zip", _const(zip_with_symlink(GOOD, "a/link.png", "/etc/passwd")), 422, _member("a/link.png")),
    "zip bomb member (ratio)": Hostile("d.zip", lambda _: zip_bytes(_with("a/bomb.png", bytes(4 << 20))), 413, _member("a/bomb.png")),
    "tar.gz bomb (ratio)": Hostile("d.tar.gz", lambda _: tar_bytes(_with("a/bomb.png", bytes(8 << 20)), "w:gz"), 413, "file"),
    "uncompressed total": Hostile("d.tar", _const(tar_bytes(GOOD)), 413, "file", {"dataset_max_uncompressed_bytes": 200}),
    "member count": Hostile("d.zip", _const(zip_bytes(GOOD)), 413, "file", {"dataset_max_archive_members": 5}),
    "sample count": Hostile("d.npz", _const(_NPZ), 413, "x", {"dataset_max_samples": 5}),
    "absurd image dimensions": Hostile("d.zip", _const(zip_bytes(_with("a/huge.png", png_header(100_000, 100_000)))), 413, _member("a/huge.png")),
    **_LABEL_CASES,
    **_PIXEL_CASES,
    "pickled object array": Hostile("d.npz", lambda marker: npz_bytes(x=X, y=np.array([creates_marker(marker)] * 6, dtype=object)), 422, "y"),
    "malicious cifar pickle": Hostile("c.tar.gz", lambda marker: tar_bytes(cifar_batch(creates_marker(marker)), "w:gz"), 422, _member(CIFAR_BATCH_MEMBER)),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_hostile_upload_is_refused_and_leaves_nothing(
    client: TestClient, settings: Settings, db: Database, tmp_path: Path, case: Hostile
) -> None:
    marker = tmp_path / "marker"
    content = case.build(marker)
    if case.limits:
        limited = create_app(settings.model_copy(update=case.limits))
        with TestClient(limited, headers=client.headers, raise_server_exceptions=False) as limited_client:
            response = upload(limited_client, content, case.filename)
    else:
        response = upload(client, content, case.filename)
    body = assert_problem(response, case.status)
    assert body["type"] == "urn:condense:problem:dataset-invalid"
    assert body["errors"][0]["field"] == case.field and body["errors"][0]["hint"]
    assert not marker.exists()  # never unpickled
    assert_nothing_stored(settings, db)


def test_limits_come_from_the_settings(client: TestClient, settings: Settings, db: Database) -> None:
    # The "member count" case is refused only because of its setting: the defaults accept it.
    assert upload(client, zip_bytes(GOOD), "d.zip").status_code == 201


def test_client_filename_cannot_escape_the_store(client: TestClient, settings: Settings, db: Database) -> None:
    refused = upload(client, b"not a dataset" * 10, "../../x.npz")
    assert_problem(refused, 422)
    assert_nothing_stored(settings, db)
    created = upload(client, random_npz_bytes(), "../../x.npz")
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "x"
    blobs = stored_blobs(settings)
    assert len(blobs) == 1 and blobs[0].is_relative_to(settings.blob_root / "sha256")
    assert list(settings.data_dir.parent.rglob("x.npz")) == []


@pytest.fixture
def served_port(settings: Settings) -> Iterator[int]:
    """The app behind a real uvicorn (in a thread): TestClient cannot hang up in the middle of a body."""
    with served_in_thread(create_app(settings)) as port:
        yield port


def test_client_disconnecting_mid_upload_leaves_nothing(
    client: TestClient, served_port: int, settings: Settings, db: Database
) -> None:
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="d.npz"\r\n\r\n'
    partial = head + random_npz_bytes()[:4096]
    headers = {**client.headers, "content-type": "multipart/form-data; boundary=b", "content-length": "100000"}
    request = f"POST /v1/datasets HTTP/1.1\r\nhost: 127.0.0.1:{served_port}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items() if k.lower() not in {"host", "content-length", "content-type"}
    ) + f"content-type: {headers['content-type']}\r\ncontent-length: {headers['content-length']}\r\n\r\n"
    staged = settings.blob_root / ".tmp"
    with socket.create_connection(("127.0.0.1", served_port)) as conn:
        conn.sendall(request.encode() + partial)
        # Proof that the server was receiving the body when the client went away.
        wait_until(lambda: any(staged.rglob("upload.part")), 10, "staging the upload")
    wait_until(lambda: not any(staged.rglob("*")), 10, "cleaning the staging folder")
    assert_nothing_stored(settings, db)
