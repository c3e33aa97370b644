"""Keyset pagination over time-ordered ids: newest first, the cursor is the last id of the page."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

Row = TypeVar("Row")


def page_newest_first(
    session: Session, query: Select[tuple[Row]], id_column: InstrumentedAttribute[Any], cursor: str | None, limit: int
) -> tuple[list[Row], str | None]:
    if cursor:
        query = query.where(id_column < cursor)
    rows = list(session.scalars(query.order_by(id_column.desc()).limit(limit + 1)))
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, str(getattr(rows[-1], id_column.key))
    return rows, None
