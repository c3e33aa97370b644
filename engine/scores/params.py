"""A score's tunable parameters: type, bounds, default and help in one place, so a request can be
checked before any training instead of failing (or silently scoring nothing) in the worker."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# Longest parameter name shown in a field name; every registered one is far shorter.
MAX_NAME_LENGTH = 40


@dataclass(frozen=True)
class ParamProblem:
    """Why a request cannot run: ``field`` is ``score_params.<name>`` or ``proxy.epochs``, as in the API."""

    field: str
    message: str


@dataclass(frozen=True)
class Param:
    """One tunable parameter of a score.

    Attributes:
        default: the value when the parameter is left out; None means derived from the proxy run (see ``help``).
        kind: ``int`` or ``float`` (a float parameter also takes an integer; neither takes a boolean).
        help: one line for the CLI and the docs.
        minimum, maximum: inclusive bounds, if any.
        exclusive_minimum: makes ``minimum`` exclusive.
    """

    default: int | float | None
    kind: type[int] | type[float]
    help: str
    minimum: int | float | None = None
    maximum: int | float | None = None
    exclusive_minimum: bool = False

    def problem(self, value: object) -> str | None:
        """Why ``value`` cannot be this parameter, or None when it can."""
        wanted = "an integer" if self.kind is int else "a number"
        # bool is an int in Python, but true/false for a window or a beta is a client's mistake.
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be {wanted}, not {_json_type(value)}"
        if self.kind is int and not isinstance(value, int):
            return f"must be {wanted}, not {value!r}"
        if not math.isfinite(value):
            return f"must be a finite number, not {value!r}"
        if self.minimum is not None:
            if self.exclusive_minimum and value <= self.minimum:
                return f"must be > {self.minimum}"
            if value < self.minimum:
                return f"must be >= {self.minimum}"
        if self.maximum is not None and value > self.maximum:
            return f"must be <= {self.maximum}"
        return None

    def describe(self) -> str:
        """``integer >= 2, default 10: <help>``, for the API's documentation."""
        bounds = []
        if self.minimum is not None:
            bounds.append(f"{'>' if self.exclusive_minimum else '>='} {self.minimum}")
        if self.maximum is not None:
            bounds.append(f"<= {self.maximum}")
        kind = "integer" if self.kind is int else "number"
        default = "" if self.default is None else f", default {self.default}"
        return f"{' '.join([kind, ' and '.join(bounds)]).strip()}{default}: {self.help}"


# A score's checks across its parameters and the proxy run's length: given the parameters the request
# names (each already of the right type and within its bounds) and the proxy run's epochs.
Constraints = Callable[[Mapping[str, Any], int], list[ParamProblem]]


def param_field(name: str) -> str:
    """``score_params.<name>``, with a name that is not short printable ASCII escaped and cut: the field
    of an error must not carry a NUL (PostgreSQL refuses it in text) nor echo megabytes."""
    if name.isascii() and name.isprintable() and len(name) <= MAX_NAME_LENGTH:
        return f"score_params.{name}"
    shown = name[:MAX_NAME_LENGTH].encode("unicode_escape").decode("ascii")
    return f"score_params.{shown}{'...' if len(name) > MAX_NAME_LENGTH else ''}"


def with_defaults(params: Mapping[str, Any], specs: Mapping[str, Param]) -> dict[str, Any]:
    """Every parameter of ``specs``: the given value, else its default."""
    return {name: params.get(name, spec.default) for name, spec in specs.items()}


def half_span(span: int, minimum: int) -> int:
    """A sliding window's default length: half the epochs it slides over (at least ``minimum``), so a short
    proxy run still has several windows for the average over windows to combine."""
    return max(minimum, min(span, (span + 1) // 2))


def past_the_run(params: Mapping[str, Any], names: tuple[str, ...], epochs: int) -> list[ParamProblem]:
    """Epoch-valued parameters that name an epoch the proxy run never reaches."""
    return [
        ParamProblem(param_field(name), f"is past the last epoch ({epochs}) of the proxy run (proxy.epochs)")
        for name in names
        if params.get(name) is not None and params[name] > epochs
    ]


def _json_type(value: object) -> str:
    # The value itself may be megabytes long: name its type only.
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else type(value).__name__
