"""Row locks that serialise two requests on the same row for the rest of the transaction.

PostgreSQL locks the row itself (``SELECT ... FOR UPDATE`` or ``FOR SHARE``). SQLite has no row
locks: a write statement takes the database's single write lock, which every other writer waits for
(``busy_timeout``) and which is held until commit, so the no-op UPDATE below serialises just as well;
reads after it see every transaction that committed before it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session


def lock_row(session: Session, model: type[Any], ident: str, *, shared: bool = False) -> bool:
    """Locks ``model``'s row with primary key ``ident`` until the transaction ends; False when there is
    none. ``shared``: other shared holders may proceed (PostgreSQL), an exclusive one waits for all."""
    (key,) = model.__table__.primary_key.columns
    if session.get_bind().dialect.name == "sqlite":
        no_op = update(model).where(key == ident).values({key: key}).execution_options(synchronize_session=False)
        result = session.execute(no_op)
        return result.rowcount == 1  # type: ignore[attr-defined]
    query = select(key).where(key == ident).with_for_update(read=shared)
    return session.scalar(query) is not None


def insert_if_absent(session: Session, model: type[Any], **values: Any) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the session's backend: a row several requests may create at
    once, which whoever comes second then locks or updates instead."""
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgresql_insert
    return insert(model).values(**values).on_conflict_do_nothing()
