"""Per-sample pruning scores, each defined in its own module with its paper's sign convention.

Importing this package imports no torch: the score modules hold the definitions, parameters and checks the API
needs, and each names its accumulator (``engine.scores.accumulators``, torch) for a run to import.
"""

from engine.scores import aum, dyn_unc, el2n, entropy, eva, forgetting, moderate, random_score, tdds  # noqa: F401
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
    "SCORES",
    "Param",
    "ParamProblem",
    "ScoreSpec",
    "check_score_params",
    "describe_params",
    "get_score",
    "register_score",
    "score_names",
    "score_random",
]
