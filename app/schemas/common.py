"""Shapes shared by every resource."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")

# Ids, cursors and names in requests are printable ASCII: PostgreSQL refuses a NUL inside text, so a
# control character must fail validation (422 naming the field), not the query (500).
PRINTABLE = r"^[!-~]+$"
ObjectId = Annotated[str, Field(max_length=40, pattern=PRINTABLE, description="an id this API returned")]


class StrictModel(BaseModel):
    """Request bodies refuse unknown fields, so a typo is a 422 rather than a silently ignored option, and
    NaN and infinities (which Python's json writes), so those get "should be a finite number" rather than
    a bound's message ("less than 1") or a run that trains on NaN."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Page(BaseModel, Generic[T]):
    """One page of a list; pass ``next_cursor`` back as ``cursor`` for the next page (null on the last)."""

    data: list[T]
    next_cursor: str | None = None
