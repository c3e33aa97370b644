"""Typer takes a command's choices as an Enum; these are built from the engine's registries and Literals,
so that the CLI offers exactly what the engine runs."""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum


def choices(name: str, values: Iterable[str]) -> type[Enum]:
    """A str Enum whose members are ``values``, each named as its value (typer shows the values)."""
    return Enum(name, {value: value for value in values}, type=str)
