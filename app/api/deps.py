"""Request dependencies as ``Annotated`` aliases, so route signatures read like their contract."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.blobstore import BlobStore
from app.core.config import Settings
from app.core.db import Database
from app.core.ids import DATASET, JOB, PROXY_RUN, id_pattern
from app.core.problems import ProblemError
from app.schemas.common import PRINTABLE
from app.services.auth import Caller, authenticate
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


_bearer = HTTPBearer(auto_error=False, description="An API key from `condense admin create-key`.")


def get_caller(
    request: Request,
    db: Annotated[Database, Depends(get_database)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The tenant the request acts for. Its own short session: an event stream must not hold a
    database connection for as long as it runs."""
    if request.app.state.settings.auth == "off":
        return request.app.state.local_caller
    if credentials is None:
        raise _unauthorized("send an API key as 'Authorization: Bearer <key>' (condense admin create-key makes one)")
    with db.session() as session:
        caller = authenticate(session, credentials.credentials)
    if caller is None:
        raise _unauthorized("the API key is unknown or revoked; ask an administrator for a new one")
    return caller


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(401, detail, slug="unauthorized", headers={"WWW-Authenticate": "Bearer"})


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
DatabaseDep = Annotated[Database, Depends(get_database)]
SessionDep = Annotated[Session, Depends(get_session)]
BlobsDep = Annotated[BlobStore, Depends(get_blobs)]
DoorbellDep = Annotated[Doorbell, Depends(get_doorbell)]
CallerDep = Annotated[Caller, Depends(get_caller)]
# A filter or cursor in the query string; see PRINTABLE for why it is checked.
TextQuery = Annotated[str | None, Query(max_length=100, pattern=PRINTABLE)]

# Ids in the path have the shape app.core.ids gives them: a malformed one (a NUL, which PostgreSQL refuses
# inside text, or one too long) is a 422 naming the parameter before any query runs, never a 500.
DatasetIdPath = Annotated[str, Path(pattern=id_pattern(DATASET), description="a dataset id this API returned")]
JobIdPath = Annotated[str, Path(pattern=id_pattern(JOB), description="a job id this API returned")]
ProxyRunIdPath = Annotated[str, Path(pattern=id_pattern(PROXY_RUN), description="a proxy run id this API returned")]
# An artifact's file name as the job lists it (e.g. report.json); at most as long as its column holds.
ArtifactNamePath = Annotated[str, Path(max_length=100, pattern=PRINTABLE, description="an artifact name the job lists")]
