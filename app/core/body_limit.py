"""A cap on every request body that is not a multipart upload (those have their own, in
app/services/uploads.py), so a 10 MB job spec is refused before it is parsed, stored and listed."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.problems import ProblemError, problem_response


def body_too_large(max_bytes: int) -> ProblemError:
    return ProblemError(
        413,
        f"the request body exceeds the limit of {max_bytes} bytes (CONDENSE_MAX_JSON_BODY_BYTES); "
        "upload data files as multipart/form-data to /v1/datasets",
        slug="body-too-large",
    )


class BodyLimit:
    """Reads a non-multipart body ahead of the app, counting bytes as they arrive, and answers 413 as
    soon as it passes ``max_bytes`` (or Content-Length announces that it will); otherwise the app gets
    the same messages. Content-Length alone would not do: a chunked body has none. Holding the body is
    what the app does anyway before parsing it, and it is at most ``max_bytes`` plus one chunk."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope) if scope["type"] == "http" else None
        if headers is None or headers.get("content-type", "").startswith("multipart/form-data"):
            await self.app(scope, receive, send)
            return
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        read: list[Message] = []
        size = 0
        while True:
            message = await receive()
            read.append(message)
            if message["type"] != "http.request":  # the client went away: the app sees that too
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            # Then the server's own receive, which reports a disconnect (SSE streams wait for it).
            return read.pop(0) if read else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        await problem_response(request, body_too_large(self.max_bytes))(scope, receive, send)
