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
MAX_FILENAME_CHARS = 120
# One header line of a part. python-multipart's own cap fires in the middle of a chunk, before the
# header reaches the callbacks, so it cannot say which part was at fault; this one is checked as the
# header arrives, and the parser's is raised far above it to stay only a backstop.
MAX_HEADER_BYTES = 4096
PARSER_MAX_HEADER_BYTES = 1024 * 1024
CLIENT_HINT = "let the HTTP client build the multipart body, e.g. curl -F file=@data.npz"


@dataclass
class ReceivedUpload:
    path: Path
    filename: str
    sha256: str
    size: int
    fields: dict[str, str]


def invalid_upload(message: str, hint: str, field: str | None = None) -> ProblemError:
    """A 422 about the multipart body, naming the part (form field) at fault where one is."""
    errors = [{"field": field, "message": message, "hint": hint}] if field else []
    return ProblemError(422, f"{message}; {hint}", slug="upload-invalid", errors=errors)


def too_large(max_bytes: int) -> ProblemError:
    return ProblemError(413, f"the upload exceeds the limit of {max_bytes} bytes", slug="upload-too-large")


def safe_filename(raw: str) -> str:
    """Keeps the base name and its extensions (format detection reads them), drops anything path-like."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", raw.replace("\\", "/").rsplit("/", 1)[-1]).lstrip(".")
    return name[:MAX_FILENAME_CHARS] or "upload"


def _shortened(text: str | None, keep: int = 60) -> str | None:
    """Client text quoted in a message, cut so that a 5000-character name does not fill the answer."""
    return text if text is None or len(text) <= keep else text[:keep] + "..."


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
    ended: bool = False  # the closing boundary was read

    def on_part_begin(self) -> None:
        self._headers = {}
        self._part_name = None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]
        self._check_header_size()

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]
        self._check_header_size()

    def _check_header_size(self) -> None:
        if len(self._header_field) + len(self._header_value) <= MAX_HEADER_BYTES:
            return
        header = _shortened(self._header_field.decode("latin-1").strip()) or "a header"
        part = self._name_so_far()
        where = f"part {_shortened(part)!r}" if part else "a part"
        message = f"the {header} header of {where} is longer than {MAX_HEADER_BYTES} bytes"
        if header.lower() == "content-disposition" and b"filename" in self._header_value:
            hint = f"shorten the file name (the service keeps at most {MAX_FILENAME_CHARS} characters of it)"
        else:
            hint = f"keep each header of a part under {MAX_HEADER_BYTES} bytes"
        raise invalid_upload(message, hint, part)

    def _name_so_far(self) -> str | None:
        """The name of the part whose headers are being read, when its Content-Disposition (perhaps only the
        start of it) says so."""
        disposition = self._headers.get(b"content-disposition")
        if disposition is None and self._header_field.lower() == b"content-disposition":
            disposition = self._header_value
        name = parse_options_header(disposition or b"")[1].get(b"name", b"")
        # A name cut short inside its quotes is not known yet.
        return name.decode("utf-8", "replace") if name and not name.startswith(b'"') else None

    def on_header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._part_name = params.get(b"name", b"").decode("utf-8", "replace")
        self._part_is_file = self._part_name == FILE_FIELD
        self._part_has_filename = b"filename" in params
        self._text = bytearray()
        if self._part_is_file:
            if self._file is not None:
                raise invalid_upload("the body has more than one 'file' part", "send exactly one", FILE_FIELD)
            self.filename = safe_filename(params.get(b"filename", b"upload").decode("utf-8", "replace"))
            self._file = self.target.open("wb")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if not self._part_is_file:
            self._text += chunk
            if len(self._text) > MAX_TEXT_FIELD_BYTES:
                if self._part_has_filename:  # a file sent under another name (curl -F data=@x.zip)
                    raise invalid_upload(
                        f"the file was sent as the part {_shortened(self._part_name)!r}",
                        f"send the dataset as the part '{FILE_FIELD}' (curl -F {FILE_FIELD}=@path)",
                        FILE_FIELD,
                    )
                raise invalid_upload(
                    f"form field {_shortened(self._part_name)!r} is longer than {MAX_TEXT_FIELD_BYTES} bytes",
                    "shorten it",
                    self._part_name or None,
                )
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
        self._part_name = None

    def on_end(self) -> None:
        self.ended = True

    @property
    def current_part(self) -> str | None:
        """The name of the part being read (its headers or its data), if it has one."""
        return self._part_name or self._name_so_far()

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
        raise invalid_upload("the multipart Content-Type has no boundary", CLIENT_HINT, "header.Content-Type")
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
            "on_end",
        )
    }
    parser = MultipartParser(boundary, callbacks, max_header_size=PARSER_MAX_HEADER_BYTES)  # type: ignore[arg-type]
    try:
        async for chunk in body:
            # Disk writes happen inside the parser's callbacks; keep them off the event loop.
            await run_in_threadpool(parser.write, chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise invalid_upload(f"malformed multipart body: {exc}", CLIENT_HINT, sink.current_part) from exc
    except ClientDisconnect as exc:
        # Nobody reads the answer; raising still unwinds the staging folder, so nothing is kept.
        raise ProblemError(400, "the client disconnected during the upload", slug="upload-interrupted") from exc
    finally:
        sink.close()
    if sink.filename is None:
        raise invalid_upload("the multipart body has no 'file' part", "send the dataset as the part 'file'", FILE_FIELD)
    if not sink.ended:
        # Otherwise a body cut short would be kept as if it were the whole file.
        raise invalid_upload(
            "the multipart body ends before its closing boundary",
            "the upload was cut short; send all of it again",
            sink.current_part,
        )
    path = folder / sink.filename
    (folder / "upload.part").rename(path)
    return ReceivedUpload(path, sink.filename, sink.digest.hexdigest(), sink.size, sink.fields)
