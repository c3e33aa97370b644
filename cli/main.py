"""Entry point of the ``condense`` command."""

from __future__ import annotations

import typer

from cli import distill as _distill
from cli import prune as _prune

app = typer.Typer(
    name="condense",
    help="Make image-classification training data smaller without losing accuracy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
_prune.register(app)
_distill.register(app)


@app.callback()
def main() -> None:
    """Condense: coreset pruning and dataset distillation, from the command line or as a service."""
from cli import service as _service; _service.register(app)  # noqa: E702 - serve, worker, migrate, demo
from cli import admin as _admin; _admin.register(app)  # noqa: E702 - create-key, revoke-key, list-keys, set-limits
from cli import remote as _remote; _remote.register(app)  # noqa: E702 - datasets and jobs on a server
