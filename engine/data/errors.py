"""Errors raised for bad or oversized datasets, shaped for an HTTP problem+json body."""

from __future__ import annotations


class DatasetError(Exception):
    """The dataset cannot be used as given; the service answers 422.

    Attributes:
        message: what is wrong, naming the file, array or archive member.
        field: where the problem is (``file``, ``x``, ``y``, ``archive member train/cat/3.png``...).
        hint: what the user should do about it.
    """

    def __init__(self, message: str, *, field: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.hint = hint

    def __str__(self) -> str:
        return self.message + (f". Hint: {self.hint}" if self.hint else "")


class DatasetTooLarge(DatasetError):
    """The dataset exceeds a :class:`~engine.data.limits.LoadLimits` bound; the service answers 413."""
