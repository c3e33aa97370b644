"""How error responses are documented in the OpenAPI: every one is an RFC 9457 problem, so clients
(and the schema fuzzing in the tests) can rely on that body for each status a route may answer."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, Field

from app.core.problems import PROBLEM_JSON


class Problem(BaseModel):
    type: str = Field(description='"urn:condense:problem:<slug>" naming the kind of problem, or "about:blank"')
    title: str
    status: int
    detail: str = Field(description="what went wrong and how to fix it")
    instance: str = Field(description="the request path")
    # Plain mappings, not a nested model: the schema stays inline, free of references to resolve.
    errors: list[dict[str, str | None]] | None = Field(
        None, description="for invalid input: one entry per field at fault (field, message, optional hint)"
    )


_SCHEMA = Problem.model_json_schema()


def problem_responses(statuses: Iterable[int] | Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route or router: each status documented as a problem+json body; a mapping
    also says what each status means for that route."""
    described = statuses if isinstance(statuses, Mapping) else {s: HTTPStatus(s).phrase for s in statuses}
    return {
        status: {"description": description, "content": {PROBLEM_JSON: {"schema": _SCHEMA}}}
        for status, description in described.items()
    }
