"""A malformed multipart upload gets a 422 that names the part (form field) at fault, with a hint, and
leaves nothing stored; one where no part is at fault says so without naming one."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.core.db import Database
from tests.service_fixtures import (  # noqa: F401 - fixtures
    assert_problem,
    backend,
    client,
    db,
    random_npz_bytes,
    settings,
)
from tests.test_api_datasets import assert_nothing_stored, upload

NPZ = random_npz_bytes()
FILE_HEAD = b'--b\r\nContent-Disposition: form-data; name="file"; filename="d.npz"\r\n'


def post_raw(client: TestClient, body: bytes, content_type: str = "multipart/form-data; boundary=b"):
    return client.post("/v1/datasets", content=body, headers={"content-type": content_type})


def assert_refused(response, field: str, settings: Settings, db: Database) -> dict:
    body = assert_problem(response, 422, field=field)
    assert body["type"] == "urn:condense:problem:upload-invalid"
    [error] = body["errors"]
    assert error["hint"] and error["hint"] in body["detail"]
    assert_nothing_stored(settings, db)
    return error


def test_a_5000_character_file_name_names_the_file_part(client: TestClient, settings: Settings, db: Database) -> None:
    error = assert_refused(upload(client, NPZ, filename="a" * 5000 + ".npz"), "file", settings, db)
    assert "Content-Disposition" in error["message"] and "file name" in error["hint"]
    assert "a" * 100 not in error["message"]  # the name is not echoed back in full


def test_a_long_file_name_below_the_header_cap_is_kept_shortened(client: TestClient) -> None:
    created = upload(client, NPZ, filename="b" * 3000 + ".npz")
    assert created.status_code == 201, created.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        # Another header of the file part that is too long.
        (FILE_HEAD + b"Content-Type: " + b"x" * 5000 + b"\r\n\r\n" + NPZ + b"\r\n--b--\r\n", "file"),
        # A header line without a colon, after the one that names the part.
        (FILE_HEAD + b"Broken\r\n\r\n" + NPZ + b"\r\n--b--\r\n", "file"),
        # Cut short: no closing boundary (before, the truncated file was kept as if complete).
        (FILE_HEAD + b"\r\n" + NPZ, "file"),
        (FILE_HEAD + b"\r\n" + NPZ + b"\r\n" + FILE_HEAD + b"\r\n" + NPZ + b"\r\n--b--\r\n", "file"),
        (b'--b\r\nContent-Disposition: form-data; name="name"\r\n\r\n' + b"n" * 2000 + b"\r\n--b--\r\n", "name"),
    ],
    ids=["long-header", "broken-header", "no-closing-boundary", "two-files", "long-text-field"],
)
def test_the_part_at_fault_is_named(
    client: TestClient, settings: Settings, db: Database, body: bytes, field: str
) -> None:
    assert_refused(post_raw(client, body), field, settings, db)


def test_a_content_type_without_boundary_names_the_header(
    client: TestClient, settings: Settings, db: Database
) -> None:
    response = post_raw(client, FILE_HEAD + b"\r\n" + NPZ, "multipart/form-data")
    assert_refused(response, "header.Content-Type", settings, db)


def test_a_body_that_is_not_multipart_at_all_names_no_part(
    client: TestClient, settings: Settings, db: Database
) -> None:
    body = assert_problem(post_raw(client, b"garbage, not multipart"), 422)
    assert "errors" not in body and "curl -F" in body["detail"]
    assert_nothing_stored(settings, db)
