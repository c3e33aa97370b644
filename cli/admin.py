"""``condense admin``: API keys and tenant limits, straight against the service's database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# The service's modules (SQLAlchemy, alembic) are imported inside the commands that use them, so that
# `condense --help` answers without them.
console = Console(stderr=True)  # stdout carries only what a script captures: the key
admin = typer.Typer(help="Manage tenants and their API keys.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(admin, name="admin")


@contextmanager
def _session() -> Iterator[Session]:
    from app.core.config import get_settings
    from app.core.db import Database
    from app.core.migrate import upgrade_to_head

    settings = get_settings()
    settings.ensure_folders()
    upgrade_to_head(settings.database_url)
    db = Database(settings.database_url)
    try:
        with db.session() as session:
            yield session
    finally:
        db.dispose()


@admin.command("create-key")
def create_key(tenant: Annotated[str, typer.Option(help="tenant the key acts for (created if new)")]) -> None:
    """Create an API key; it is printed once and only its hash is stored."""
    from app.services import auth

    with _session() as session:
        key, token = auth.create_key(session, tenant)
    console.print(f"key {key.id} for tenant {tenant!r} (shown once; send it as 'Authorization: Bearer <key>'):")
    typer.echo(token)


@admin.command("revoke-key")
def revoke_key(key_id: Annotated[str, typer.Argument(help="the key's id: the part before the dot")]) -> None:
    """Revoke an API key; requests with it get 401 from then on."""
    from app.services import auth

    with _session() as session:
        revoked = auth.revoke_key(session, key_id.partition(".")[0])
    if not revoked:
        console.print(f"[red]no active key {key_id!r}[/]")
        raise typer.Exit(1)
    console.print(f"revoked {key_id}")


@admin.command("list-keys")
def list_keys() -> None:
    """List API keys (ids, tenants, when created and revoked; never the secrets)."""
    from sqlalchemy import select

    from app.models import ApiKey, Tenant

    table = Table("key", "tenant", "created", "revoked")
    with _session() as session:
        for key, name in session.execute(select(ApiKey, Tenant.name).join(Tenant).order_by(ApiKey.id)):
            table.add_row(key.id, name, f"{key.created_at:%Y-%m-%d %H:%M}", f"{key.revoked_at or ''}")
    console.print(table)


@admin.command("set-limits")
def set_limits(
    tenant: Annotated[str, typer.Option(help="tenant name")],
    max_active_jobs: Annotated[int | None, typer.Option(min=1, help="queued + running jobs at once")] = None,
    max_stored_bytes: Annotated[int | None, typer.Option(min=1, help="bytes of datasets, artifacts, experts")] = None,
) -> None:
    """Give a tenant its own limits (unset ones keep the service-wide defaults)."""
    from app.services import auth

    with _session() as session:
        row = auth.tenant_named(session, tenant)
        if max_active_jobs is not None:
            row.max_active_jobs = max_active_jobs
        if max_stored_bytes is not None:
            row.max_stored_bytes = max_stored_bytes
    console.print(f"tenant {tenant!r}: max_active_jobs={row.max_active_jobs}, max_stored_bytes={row.max_stored_bytes}")
