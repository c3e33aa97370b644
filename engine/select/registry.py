"""Selection policies: which samples a class (or the whole set) keeps once every sample has a score. The API's
and the CLI's mode choices, ``auto``'s bookkeeping and the dispatch in ``engine.select.policies`` read this
registry; adding a policy is its function plus a line below. Light (no scikit-learn): a policy's function is
named as ``"module:function"`` and imported when a selection runs it.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.registry import Registry


@dataclass(frozen=True)
class SelectionPolicy:
    """Attributes:
        name: the mode a job names (``ccs``).
        description: one line for the docs and the help.
        pick: ``"module:function"`` taking ``(importance, features, k, config, rng, seed)`` (importance oriented so
            that larger is harder; features of the same samples, or None) and returning ``k`` indices into them.
        ranking: reads only the order of one score, so prune-then-distill's per-class start can use it.
        reads_score: the kept set depends on the score; a policy that ignores it is reported ``score used: no``.
        needs_features: reads the proxy model's features of every sample.
    """

    name: str
    description: str
    pick: str
    ranking: bool = True
    reads_score: bool = True
    needs_features: bool = False


POLICIES: Registry[SelectionPolicy] = Registry("selection mode")

POLICIES.register(SelectionPolicy("hardest", "the most important samples", "engine.select.policies:keep_hardest"))
POLICIES.register(SelectionPolicy("easiest", "the least important samples", "engine.select.policies:keep_easiest"))
POLICIES.register(SelectionPolicy(
    "window", "a block of the importance ranking between two percentiles (window [lo, hi])",
    "engine.select.policies:keep_window"))
POLICIES.register(SelectionPolicy(
    "ccs", "coverage-centric strata of the score after dropping the hardest (Zheng et al., ICLR 2023)",
    "engine.select.policies:keep_ccs"))
POLICIES.register(SelectionPolicy(
    "prototypes", "the sample nearest each k-means centroid of the proxy's features (ignores the score)",
    "engine.select.prototypes:keep_prototypes", ranking=False, reads_score=False, needs_features=True))
