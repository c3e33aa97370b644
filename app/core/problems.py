"""RFC 9457 problem details: one exception type for the service's own errors, and the handlers that
turn every error (ours, routing, validation, crashes) into ``application/problem+json``."""

from __future__ import annotations

import difflib
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import FileResponse, MalformedRangeHeader, RangeNotSatisfiable, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.db import database_unavailable

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


class ProblemError(Exception):
    """An error the client can act on; ``slug`` names its problem type."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        title: str | None = None,
        errors: Sequence[dict[str, str]] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug
        self.title = title or HTTPStatus(status).phrase
        self.errors = list(errors)
        self.headers = headers


def not_found(what: str, ident: str) -> ProblemError:
    return ProblemError(404, f"{what} {ident!r} does not exist", slug="not-found")


def invalid_field(field: str, message: str) -> ProblemError:
    """A 422 about one field of an otherwise well-formed request, shaped like the schema validation errors."""
    return ProblemError(
        422,
        f"{field}: {message}",
        slug="validation",
        title="Invalid request",
        errors=[{"field": field, "message": message}],
    )


def unavailable(dependency: str, retry_after_s: int) -> ProblemError:
    """A 503 naming the dependency that is down; the client may retry the same request later."""
    return ProblemError(
        503,
        f"the {dependency} is unavailable; retry in {retry_after_s} s",
        slug="dependency-unavailable",
        headers={"Retry-After": str(retry_after_s)},
    )


def broker_unavailable(exc: BaseException) -> bool:
    """kombu reports a broker it cannot reach as its OperationalError; a raw redis-py error can escape too."""
    return isinstance(exc, KombuOperationalError | RedisConnectionError | RedisTimeoutError)


def problem_response(request: Request, problem: ProblemError) -> JSONResponse:
    body: dict[str, Any] = {
        # "about:blank" means the status code says it all (RFC 9457 section 4.2.1).
        "type": f"urn:condense:problem:{problem.slug}" if problem.slug else "about:blank",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": request.url.path,
    }
    if problem.errors:
        body["errors"] = problem.errors
    return JSONResponse(body, status_code=problem.status, media_type=PROBLEM_JSON, headers=problem.headers)


class ProblemFileResponse(FileResponse):
    """A ``FileResponse`` whose Range errors are problems too: Starlette answers a malformed Range
    with 400 and an unsatisfiable one with 416, both in text/plain. Raised from inside the response,
    they reach the app's ProblemError handler (the response has not started)."""

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        try:
            return super()._parse_range_header(http_range, file_size)
        except MalformedRangeHeader as exc:
            reason = exc.content.removeprefix("Range header: ").rstrip(".")
            message = (
                f"malformed Range {http_range!r} ({reason}); send e.g. 'bytes=0-1023', 'bytes=1024-' or 'bytes=-512'"
            )
            raise ProblemError(
                400, message, slug="range-invalid", errors=[{"field": "header.Range", "message": message}]
            ) from exc
        except RangeNotSatisfiable as exc:
            message = (
                f"Range {http_range!r} starts past the end of the {exc.max_size}-byte file; "
                f"ask for bytes below {exc.max_size}"
            )
            raise ProblemError(
                416,
                message,
                slug="range-not-satisfiable",
                errors=[{"field": "header.Range", "message": message}],
                headers={"Content-Range": f"bytes */{exc.max_size}"},
            ) from exc


def field_path(loc: Sequence[int | str], tags: frozenset[str] = frozenset()) -> str:
    """``("body", "prune", "proxy", "epochs")`` -> ``"proxy.epochs"``: drops the request part and union tags."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        source = parts.pop(0)
        if source != "body" and parts:
            parts[0] = f"{source}.{parts[0]}"
    if parts and parts[0] in tags:
        parts.pop(0)
    return ".".join(str(p) for p in parts)


def _error_field(error: dict[str, Any], union_tags: frozenset[str]) -> str:
    path = field_path(error["loc"], union_tags)
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        # The error sits on the whole union; the field at fault is its discriminator.
        tag = str(error.get("ctx", {}).get("discriminator", "")).strip("'")
        return ".".join(p for p in (path, tag) if p)
    return path


def _message(error: dict[str, Any], request: Request, union_tags: frozenset[str], known: Callable[[], set[str]]) -> str:
    """pydantic's message, replaced where it would mislead a client (issue 36.4)."""
    kind, loc = error["type"], tuple(error["loc"])
    if loc == ("body",) and kind in ("model_attributes_type", "dict_type", "model_type") and \
            not request.headers.get("content-type", "").startswith("application/json"):
        return "the body must be a JSON object sent with the header 'Content-Type: application/json'"
    if kind == "union_tag_not_found":
        return f"the body needs a 'kind': one of {', '.join(sorted(union_tags))}"
    if kind == "union_tag_invalid":
        return f"'kind' must be one of {', '.join(sorted(union_tags))}, not {error.get('input', {}).get('kind')!r}" \
            if isinstance(error.get("input"), dict) else f"'kind' must be one of {', '.join(sorted(union_tags))}"
    if kind == "extra_forbidden" and loc:
        close = difflib.get_close_matches(str(loc[-1]), known(), n=1, cutoff=0.7)
        if close:
            return f"{error['msg']}; did you mean {close[0]!r}?"
    return error["msg"]


def _field_names(app: FastAPI) -> set[str]:
    """Every property name the API's request and response schemas declare (the vocabulary of suggestions)."""
    schemas = app.openapi().get("components", {}).get("schemas", {})
    return {name for schema in schemas.values() for name in schema.get("properties", {})}


def install_problem_handlers(app: FastAPI, retry_after_s: int, union_tags: frozenset[str] = frozenset()) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        return problem_response(request, exc)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return problem_response(request, ProblemError(exc.status_code, str(exc.detail), headers=exc.headers))

    known = functools.cache(lambda: _field_names(app))

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [{"field": _error_field(e, union_tags), "message": _message(e, request, union_tags, known)}
                  for e in exc.errors()]
        detail = "; ".join(f"{e['field'] or 'body'}: {e['message']}" for e in errors)
        return problem_response(
            request, ProblemError(422, detail, slug="validation", title="Invalid request", errors=errors)
        )

    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(request, ProblemError(500, "an unexpected error occurred; it has been logged"))

    async def on_dependency_error(request: Request, exc: Exception) -> JSONResponse:
        # An outage is the client's cue to retry, not a bug: 503 with Retry-After instead of a 500.
        if database_unavailable(exc):
            dependency = "database"
        elif broker_unavailable(exc):
            dependency = "broker"
        else:  # a statement the database refused is a bug
            return await on_crash(request, exc)
        log.warning("%s unavailable on %s %s: %s", dependency, request.method, request.url.path, exc)
        return problem_response(request, unavailable(dependency, retry_after_s))

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    for error_type in (DBAPIError, PoolTimeoutError, KombuOperationalError, RedisConnectionError, RedisTimeoutError):
        app.add_exception_handler(error_type, on_dependency_error)
    app.add_middleware(CrashesAsProblems, on_crash=on_crash)


class CrashesAsProblems:
    """Answers an unhandled exception with the 500 problem, and does not re-raise it.

    Starlette's ServerErrorMiddleware (where a handler for ``Exception`` goes) re-raises after
    answering, and uvicorn then closes the connection: a keep-alive client's next request on it would
    fail with "connection reset". Added as the outermost user middleware, this sits just inside it.
    An exception after the response has started still propagates: that connection cannot be saved.
    """

    def __init__(self, app: ASGIApp, on_crash: Callable[[Request, Exception], Awaitable[Response]]) -> None:
        self.app = app
        self.on_crash = on_crash

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_watched)
        except Exception as exc:
            if started:
                raise
            response = await self.on_crash(Request(scope, receive), exc)
            await response(scope, receive, send)
