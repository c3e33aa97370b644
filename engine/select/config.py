"""Which samples a selection keeps once every sample has a score: the policies engine.select implements and
the settings a job gives them. The API's and the CLI's choices are these tuples (``engine.config_fields``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from engine.config_fields import setting
from engine.select.registry import POLICIES

# The selection policies engine.select implements (engine.select.registry); the API's and the CLI's choices are
# these tuples. Ranking policies read only the order of one score: all that prune-then-distill's per-class start needs.
RANKING_MODES: tuple[str, ...] = tuple(policy.name for policy in POLICIES if policy.ranking)
RankingMode = Literal[RANKING_MODES]  # type: ignore[valid-type]
# "auto" resolves to one of the policies (engine.select.auto).
SELECTION_MODES: tuple[str, ...] = ("auto", *POLICIES.names())
SelectionMode = Literal[SELECTION_MODES]  # type: ignore[valid-type]
# How a class-balanced selection splits its budget across classes (engine.select.allocation, which resolves auto).
Allocation = Literal["auto", "proportional", "sqrt", "equal"]
ALLOCATIONS: tuple[Allocation, ...] = get_args(Allocation)


@dataclass
class SelectionConfig:
    """Which samples to keep once every sample has a score.

    ``keep`` is a fraction in (0, 1] or, when ``keep >= 1`` and integral, an absolute count.
    """

    keep: float = 0.1
    mode: SelectionMode = setting(
        "auto",
        "auto (the policy measured best at this budget, recorded in the report), the hardest, the easiest, "
        "a percentile window of the importance ranking, CCS strata, or class prototypes",
    )
    window: tuple[float, float] | None = setting(
        None, "[lo, hi] quantiles of the importance ranking kept in 'window' mode"
    )
    class_balanced: bool | None = setting(
        None,
        "select within each class (keeping class proportions) or over all samples; unset: as the score's paper "
        "does (over all samples for TDDS, within each class otherwise; auto always within each class)",
    )
    allocation: Allocation = setting(
        "auto",
        "class-balanced selection: each class's share of the budget; auto (with mode auto equal shares, measured "
        "best on long-tailed data and the same as proportional on balanced data; with a requested mode the class "
        "proportions), in proportion to its size, to its square root, or equal (a class smaller than its share "
        "kept whole)",
    )
    ccs_hard_cutoff: float = setting(0.1, "'ccs' mode: share of the hardest samples dropped first", ge=0, lt=1)
    ccs_strata: int = 50
    weights: bool = setting(False, "also compute importance weights for the kept samples (TDDS Eq. 13)")
