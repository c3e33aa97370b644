"""Where the checkout is: alembic's configuration lives there, and launched services run from it. A module of its
own so that the launcher (and ``condense --help`` through it) need not import alembic to find it."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
