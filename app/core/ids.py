"""Public identifiers that sort by creation time, so an id doubles as a pagination cursor."""

from __future__ import annotations

import secrets
import time

# The prefix of each kind of id, so that an id says what it names.
DATASET = "ds"
JOB = "job"
PROXY_RUN = "prx"
TENANT = "tn"
API_KEY = "key"

_TIME_HEX_DIGITS = 12  # milliseconds since 1970: 12 hex digits last until the year 10889
_RANDOM_BYTES = 8


def new_id(prefix: str) -> str:
    """``<prefix>_`` + 12 hex digits of milliseconds + 16 random hex digits.

    Fixed width, so text order is creation order.
    """
    return f"{prefix}_{int(time.time() * 1000):0{_TIME_HEX_DIGITS}x}{secrets.token_hex(_RANDOM_BYTES)}"


def id_pattern(prefix: str) -> str:
    """The regular expression that the ids ``new_id(prefix)`` makes match, and nothing else: an id in a
    request is checked against it before any query sees it (PostgreSQL refuses a NUL inside text)."""
    return rf"^{prefix}_[0-9a-f]{{{_TIME_HEX_DIGITS + 2 * _RANDOM_BYTES}}}$"
