"""Tenants and API keys: create, revoke, authenticate.

A key reads ``<key id>.<secret>``. Only the sha256 of the secret is stored: the secret is 256
random bits, so a plain hash cannot be brute-forced and a slow password hash would only slow
every request. The id finds the row; the comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.db import Database
from app.core.ids import API_KEY, TENANT, new_id
from app.models import ApiKey, Tenant, utcnow

log = logging.getLogger(__name__)
LOCAL_TENANT = "local"


@dataclass(frozen=True)
class Caller:
    """Who a request acts for; services scope every query by ``tenant_id``."""

    tenant_id: str


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def tenant_named(session: Session, name: str) -> Tenant:
    """The tenant called ``name``, created on first use (a concurrent creation is picked up)."""
    tenant = session.scalar(select(Tenant).where(Tenant.name == name))
    if tenant is not None:
        return tenant
    tenant = Tenant(id=new_id(TENANT), name=name)
    session.add(tenant)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return session.scalars(select(Tenant).where(Tenant.name == name)).one()
    return tenant


def create_key(session: Session, tenant_name: str) -> tuple[ApiKey, str]:
    """A new key for ``tenant_name`` (created if needed); the plaintext is returned once and never stored."""
    tenant = tenant_named(session, tenant_name)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(id=new_id(API_KEY), tenant_id=tenant.id, secret_sha256=_secret_hash(secret))
    session.add(key)
    session.commit()
    return key, f"{key.id}.{secret}"


def revoke_key(session: Session, key_id: str) -> bool:
    """False when there is no such key or it was already revoked."""
    key = session.get(ApiKey, key_id)
    if key is None or key.revoked_at is not None:
        return False
    key.revoked_at = utcnow()
    session.commit()
    return True


def authenticate(session: Session, token: str) -> Caller | None:
    key_id, _, secret = token.partition(".")
    key = session.get(ApiKey, key_id) if secret else None
    if key is None or key.revoked_at is not None:
        return None
    if not hmac.compare_digest(key.secret_sha256, _secret_hash(secret)):
        return None
    return Caller(key.tenant_id)


def local_caller(db: Database) -> Caller:
    """The tenant every request acts for when authentication is off."""
    with db.session() as session:
        return Caller(tenant_named(session, LOCAL_TENANT).id)


def ensure_local_key(db: Database, settings: Settings) -> str:
    """The embedded default's key for its local user: the one in ``settings.local_key_file`` while it
    still works, else a new one written there (0600), so a fresh install is usable. The log names the
    file and the key's id, never the secret: logs are shipped and kept where the file's mode does not reach."""
    path = settings.local_key_file
    if path.is_file():
        token = path.read_text().strip()
        with db.session() as session:
            if authenticate(session, token) is not None:
                return token
    with db.session() as session:
        key, token = create_key(session, LOCAL_TENANT)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    log.warning("created API key %s for the local user (tenant %r); it is in %s", key.id, LOCAL_TENANT, path)
    return token
