"""Public identifiers that sort by creation time, so an id doubles as a pagination cursor."""

from __future__ import annotations

import secrets
import time


def new_id(prefix: str) -> str:
    """``<prefix>_`` + 12 hex digits of milliseconds + 16 random hex digits.

    Fixed width, so text order is creation order.
    """
    return f"{prefix}_{int(time.time() * 1000):012x}{secrets.token_hex(8)}"
