"""Score registry: the API's method enum and parameter checks, the CLI's choices and the docs all read this table."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.registry import Registry, load
from engine.scores.params import Constraints, Param, ParamProblem, param_field, with_defaults

if TYPE_CHECKING:
    from engine.scores.base import ScoreAccumulator


@dataclass(frozen=True)
class ScoreSpec:
    """How to compute a score and how to read it.

    Attributes:
        name: registry key (``el2n``).
        title: the score's name in the literature.
        reference: the paper that defines it.
        higher_is_important: True when larger values mark harder / more informative samples,
            the ones a "keep hardest" policy keeps first.
        implementation: ``"module:class"`` of the recorder-side accumulator, a ScoreAccumulator imported on first
            use (``accumulator``) so that listing and checking scores imports no torch; None for scores that need
            no training.
        params: tunable parameters, each with its type, bounds, default and help.
        constraints: the checks across parameters and the proxy run's length that the accumulator
            would otherwise only hit at run time (or that would leave every score equal).
        resolve: the values a run of ``epochs`` actually uses, where a default is derived from the run
            (an early epoch, a window); None when every default is a constant.
        selects_globally: the score's paper keeps the top samples over the whole dataset rather than
            within each class; what an unset ``class_balanced`` follows outside ``auto``.
    """

    name: str
    title: str
    reference: str
    higher_is_important: bool
    implementation: str | None
    params: Mapping[str, Param] = field(default_factory=dict)
    constraints: Constraints | None = None
    resolve: Callable[[Mapping[str, Any], int], dict[str, Any]] | None = None
    selects_globally: bool = False

    @property
    def accumulator(self) -> type[ScoreAccumulator] | None:
        """The accumulator class, called as ``accumulator(num_samples, num_classes, epochs, device, **params)``."""
        return None if self.implementation is None else load(self.implementation)

    @property
    def description(self) -> str:
        """The one line a registry entry shows: the score's name in the literature."""
        return self.title

    def resolved_params(self, params: Mapping[str, Any], epochs: int) -> dict[str, Any]:
        """Every parameter as a proxy run of ``epochs`` uses it, for the report."""
        return self.resolve(params, epochs) if self.resolve else with_defaults(params, self.params)


SCORES: Registry[ScoreSpec] = Registry("pruning method", sort=True)


def register_score(spec: ScoreSpec) -> ScoreSpec:
    return SCORES.register(spec)


def get_score(name: str) -> ScoreSpec:
    return SCORES.get(name)


def score_names() -> list[str]:
    return SCORES.names()


def describe_params() -> list[str]:
    """One line per parameter of every score: ``tdds.window: integer >= 3, default 10: epochs per window...``."""
    return [f"{name}.{key}: {param.describe()}" for name in score_names() for key, param in get_score(name).params.items()]


def check_score_params(name: str, params: Mapping[str, object], proxy_epochs: int) -> list[ParamProblem]:
    """Everything that keeps score ``name`` from running with ``params`` on a proxy run of ``proxy_epochs``
    epochs, found before any training: unknown names, wrong types, values out of bounds, then (once every
    value is valid) the score's own constraints. Empty when it can run. Raises ValueError for an unknown score."""
    spec = get_score(name)
    problems = []
    for key, value in params.items():
        param = spec.params.get(key)
        if param is None:
            problems.append(ParamProblem(param_field(key), _unknown(spec)))
        elif (message := param.problem(value)) is not None:
            problems.append(ParamProblem(param_field(key), message))
    if problems or spec.constraints is None:
        return problems
    return spec.constraints(params, proxy_epochs)


def _unknown(spec: ScoreSpec) -> str:
    if not spec.params:
        return f"{spec.name} takes no parameters"
    return f"unknown parameter of {spec.name}; known: {', '.join(spec.params)}"
