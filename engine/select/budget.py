"""How many samples a selection keeps, and the error a request that cannot be met raises: light (no scikit-learn),
so that resolving ``auto`` and checking a request need not import the policies that cluster features."""

from __future__ import annotations


class SelectionError(ValueError):
    """A selection request that cannot be met (e.g. a window smaller than the requested count)."""


def resolve_count(keep: float, n: int) -> int:
    """``keep`` in (0, 1] is a fraction of ``n``; an integral ``keep >= 1`` is an absolute count."""
    if keep <= 0:
        raise SelectionError("keep must be positive: a fraction in (0, 1] or a count >= 1")
    if keep < 1 or (keep == 1 and isinstance(keep, float)):
        return max(1, round(keep * n))
    if keep != int(keep):
        raise SelectionError(f"keep={keep} is neither a fraction in (0, 1] nor a whole count")
    if keep > n:
        raise SelectionError(f"keep={int(keep)} is larger than the {n} training samples")
    return int(keep)
