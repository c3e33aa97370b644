"""Score registry: the API's method enum, the CLI's choices and the docs all read this table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine.scores.base import ScoreAccumulator

AccumulatorFactory = Callable[..., ScoreAccumulator]


@dataclass(frozen=True)
class ScoreSpec:
    """How to compute a score and how to read it.

    Attributes:
        name: registry key (``el2n``).
        title: the score's name in the literature.
        reference: the paper that defines it.
        higher_is_important: True when larger values mark harder / more informative samples,
            the ones a "keep hardest" policy keeps first.
        accumulator: builds the recorder-side accumulator; None for scores that need no training.
        params: tunable parameters with their defaults (documented in the module).
    """

    name: str
    title: str
    reference: str
    higher_is_important: bool
    accumulator: AccumulatorFactory | None
    params: dict[str, float | int | None]


_SCORES: dict[str, ScoreSpec] = {}


def register_score(spec: ScoreSpec) -> ScoreSpec:
    _SCORES[spec.name] = spec
    return spec


def get_score(name: str) -> ScoreSpec:
    if name not in _SCORES:
        raise ValueError(f"unknown pruning method {name!r}; choose one of {', '.join(score_names())}")
    return _SCORES[name]


def score_names() -> list[str]:
    return sorted(_SCORES)
