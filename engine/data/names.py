"""What makes a name (a class name, a dataset name) fit to be shown and stored anywhere.

Control characters (NUL above all) and lone surrogates are refused by PostgreSQL text and JSON
columns and garble logs and terminals; empty and overlong names are mistakes, never intended.
"""

from __future__ import annotations

import unicodedata

#: Longest class name accepted; far above any real label, far below anything that strains storage.
MAX_CLASS_NAME_LENGTH = 200

_UNSTORABLE = {"Cc": "a control character", "Cs": "a lone surrogate"}


def name_problem(name: str, max_length: int) -> str | None:
    """Why ``name`` cannot be used as a name, or None when it can."""
    if not name.strip():
        return "is empty"
    if len(name) > max_length:
        return f"is {len(name):,} characters long, more than the limit of {max_length:,}"
    for position, char in enumerate(name):
        if kind := _UNSTORABLE.get(unicodedata.category(char)):
            return f"contains {kind} (U+{ord(char):04X} at position {position})"
    return None
