"""Request dependencies as ``Annotated`` aliases, so route signatures read like their contract."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.blobstore import BlobStore
from app.core.config import Settings
from app.core.db import Database
from app.services.doorbell import Doorbell


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_database(request: Request) -> Database:
    return request.app.state.db


def get_session(db: Annotated[Database, Depends(get_database)]) -> Iterator[Session]:
    """One session per request: committed when the route returns, rolled back when it raises."""
    with db.session() as session:
        yield session


def get_blobs(request: Request) -> BlobStore:
    return request.app.state.blobs


def get_doorbell(request: Request) -> Doorbell:
    return request.app.state.doorbell


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
DatabaseDep = Annotated[Database, Depends(get_database)]
SessionDep = Annotated[Session, Depends(get_session)]
BlobsDep = Annotated[BlobStore, Depends(get_blobs)]
DoorbellDep = Annotated[Doorbell, Depends(get_doorbell)]
