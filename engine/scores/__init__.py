"""Per-sample pruning scores, each defined in its own module with its paper's sign convention."""

from engine.scores import aum, dyn_unc, el2n, entropy, eva, forgetting, moderate, random_score, tdds  # noqa: F401
from engine.scores.base import ScoreAccumulator
from engine.scores.params import Param, ParamProblem
from engine.scores.random_score import score_random
from engine.scores.registry import (
    SCORES,
    ScoreSpec,
    check_score_params,
    describe_params,
    get_score,
    register_score,
    score_names,
)

__all__ = [
    "Param",
    "ParamProblem",
    "ScoreAccumulator",
    "SCORES",
    "ScoreSpec",
    "check_score_params",
    "describe_params",
    "get_score",
    "register_score",
    "score_names",
    "score_random",
]
