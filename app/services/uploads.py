"""Streams a multipart upload to disk while hashing it and enforcing the size cap, chunk by chunk.

Starlette's own form parsing buffers every file before the route runs, so a 50 GB body would be
written out in full before it could be refused; parsing the raw stream lets us stop at the cap.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from app.core.problems import ProblemError

FILE_FIELD = "file"
MAX_TEXT_FIELD_BYTES = 1024


@dataclass
class ReceivedUpload:
    path: Path
    filename: str
    sha256: str
    size: int
    fields: dict[str, str]


def too_large(max_bytes: int) -> ProblemError:
    return ProblemError(413, f"the upload exceeds the limit of {max_bytes} bytes", slug="upload-too-large")


def safe_filename(raw: str) -> str:
    """Keeps the base name and its extensions (format detection reads them), drops anything path-like."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", raw.replace("\\", "/").rsplit("/", 1)[-1]).lstrip(".")
    return name[:120] or "upload"


@dataclass
class _PartSink:
    """Receives the parser's callbacks; only the ``file`` part goes to disk, small text parts to memory."""

    target: Path
    max_bytes: int
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)
    size: int = 0
    filename: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    _header_field: bytes = b""
    _header_value: bytes = b""
    _headers: dict[bytes, bytes] = field(default_factory=dict)
    _part_name: str | None = None
    _part_is_file: bool = False
    _text: bytearray = field(default_factory=bytearray)
    _file: BinaryIO | None = None

    def on_part_begin(self) -> None:
        self._headers = {}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._part_name = params.get(b"name", b"").decode("utf-8", "replace")
        self._part_is_file = self._part_name == FILE_FIELD
        self._text = bytearray()
        if self._part_is_file:
            if self._file is not None:
                raise ProblemError(422, "send exactly one 'file' part", slug="upload-invalid")
            self.filename = safe_filename(params.get(b"filename", b"upload").decode("utf-8", "replace"))
            self._file = self.target.open("wb")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if not self._part_is_file:
            self._text += chunk
            if len(self._text) > MAX_TEXT_FIELD_BYTES:
                raise ProblemError(422, f"form field {self._part_name!r} is too long", slug="upload-invalid")
            return
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise too_large(self.max_bytes)
        self.digest.update(chunk)
        assert self._file is not None
        self._file.write(chunk)

    def on_part_end(self) -> None:
        if not self._part_is_file and self._part_name:
            self.fields[self._part_name] = self._text.decode("utf-8", "replace")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


async def receive_upload(
    content_type: str, content_length: str | None, body: AsyncIterator[bytes], folder: Path, max_bytes: int
) -> ReceivedUpload:
    """Writes the ``file`` part to ``folder``; raises 413 as soon as it passes ``max_bytes`` and 422 when malformed."""
    if content_length is not None and content_length.isdigit() and int(content_length) > max_bytes + 64 * 1024:
        # The multipart envelope adds well under 64 KiB, so a body announced this large cannot fit.
        raise too_large(max_bytes)
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise ProblemError(422, "multipart body without a boundary", slug="upload-invalid")
    sink = _PartSink(target=folder / "upload.part", max_bytes=max_bytes)
    callbacks = {
        name: getattr(sink, name)
        for name in (
            "on_part_begin",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
            "on_part_data",
            "on_part_end",
        )
    }
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    try:
        async for chunk in body:
            # Disk writes happen inside the parser's callbacks; keep them off the event loop.
            await run_in_threadpool(parser.write, chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise ProblemError(422, f"malformed multipart body: {exc}", slug="upload-invalid") from exc
    except ClientDisconnect as exc:
        # Nobody reads the answer; raising still unwinds the staging folder, so nothing is kept.
        raise ProblemError(400, "the client disconnected during the upload", slug="upload-interrupted") from exc
    finally:
        sink.close()
    if sink.filename is None:
        raise ProblemError(
            422,
            "the multipart body has no 'file' part",
            slug="upload-invalid",
            errors=[{"field": FILE_FIELD, "message": "required"}],
        )
    path = folder / sink.filename
    (folder / "upload.part").rename(path)
    return ReceivedUpload(path, sink.filename, sink.digest.hexdigest(), sink.size, sink.fields)
