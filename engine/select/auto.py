"""``method: auto`` and ``mode: auto``: the score and policy for the job's budget, with the reason recorded, and
never a policy that ignores a score the user named.

What is worth keeping depends on the budget (Sorscher et al., "Beyond neural scaling laws", NeurIPS 2022,
Sec. 3): when data are scarce the prototypical samples win and the hardest lose, because at small
budgets the hardest are mostly ambiguous or mislabelled (001 Sec. 4.4, Fig. 1; Zheng et al., CCS,
ICLR 2023). Measured on this project's CPU machine (MNIST and Fashion-MNIST, 300 images per class, ConvNet
width 16 proxy and evaluation, 3 seeds; ``bench/results/prune-cpu.md``): per-class k-means prototypes of the
proxy's features beat random at keep 1, 5, 10, 30 and 50% on both, while keeping the hardest by EL2N lost to
random at every budget on Fashion-MNIST and below 10% on MNIST. Above half the data k-means with that many
clusters costs more than the proxy run and was not measured; CCS strata of EL2N are kept there (Zheng et al.:
at or above random across their sweep), dropping the hardest ``ccs_hard_cutoff`` as likely noise.

So when Condense chooses (``method: auto``), it keeps prototypes up to half the data and CCS strata of EL2N
above, and says the score was not used at the small budgets. A score the user names drives the selection:
``mode: auto`` then resolves to CCS strata *of that score* at every budget, dropping the hardest 30% at
budgets of 10% or less (the CCS reference setting at 90% pruning, CIFAR-10, quoted from
haizhongzheng/Coverage-centric-coreset-selection's README) and ``ccs_hard_cutoff`` above. Prototypes (which
read only the proxy's features) are used with a named score only when asked for by name, and the report then
says ``score_used: false``.

Auto always selects within each class in proportion to its size: 001 Tables 3/4 show even pruning
across classes beating global pruning under aggressive compression, and a global rule shifts an
imbalanced dataset's class distribution further.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from engine.pipeline.prune_config import SelectionConfig
from engine.scores import ParamProblem, check_score_params
from engine.scores.params import param_field
from engine.select.policies import resolve_count

# Largest kept fraction for which auto clusters (measured up to here; see the module docstring).
PROTOTYPES_UP_TO = 0.5
AUTO = "auto"
# The score Condense records and uses when it chooses: EL2N (Paul et al. 2021), the best measured here.
AUTO_SCORE = "el2n"
# A named score's CCS at small budgets: the hardest share dropped (CCS reference, keep 10% of CIFAR-10).
SMALL_BUDGET = 0.1
SMALL_BUDGET_HARD_CUTOFF = 0.3
# Policies that read the proxy's features, not the score.
IGNORES_THE_SCORE = frozenset({"prototypes"})


def score_of(method: str) -> str:
    """The score a job's ``method`` ranks samples by: the named one, or the one ``auto`` uses."""
    return AUTO_SCORE if method == AUTO else method


def check_method_params(method: str, params: Mapping[str, object], proxy_epochs: int) -> list[ParamProblem]:
    """:func:`engine.scores.check_score_params` for a job's ``method``: with ``auto`` Condense chooses the score,
    so parameters (which belong to one score) need the score named."""
    if method == AUTO:
        return [ParamProblem(param_field(key), "method is auto; name the score this parameter belongs to (method)")
                for key in params]
    return check_score_params(method, params, proxy_epochs)


@dataclass(frozen=True)
class ResolvedSelection:
    """The concrete score and policy and why, for the report."""

    selection: SelectionConfig
    reason: str
    score: str  # the score that ranks the samples (a proxy run records it also when the policy ignores it)
    score_used: bool  # whether the kept set depends on the score

    def to_dict(self, requested: str) -> dict:
        return {
            "requested": requested,
            "mode": self.selection.mode,
            "window": self.selection.window,
            "class_balanced": self.selection.class_balanced,
            "ccs_hard_cutoff": self.selection.ccs_hard_cutoff if self.selection.mode == "ccs" else None,
            "score": self.score,
            "score_used": self.score_used,
            "reason": self.reason,
        }


def resolve_auto(
    selection: SelectionConfig,
    labels: np.ndarray,
    num_classes: int,
    selects_globally: bool = False,
    method: str = AUTO,
) -> ResolvedSelection:
    """The score and policy of a job with score ``method`` (``auto``: Condense chooses) and ``selection``:
    ``mode='auto'`` replaced by the policy for its budget; other modes keep theirs, with an unset
    ``class_balanced`` resolved to the score's own rule (``selects_globally``, from its registry)."""
    score = AUTO_SCORE if method == AUTO else method
    if selection.mode != AUTO:
        used = selection.mode not in IGNORES_THE_SCORE
        ignored = "" if used else f"; it reads the proxy's features, not the {score} score, which is not used"
        if selection.class_balanced is not None:
            return ResolvedSelection(selection, f"mode {selection.mode!r} was requested{ignored}", score, used)
        scope = "over all samples, as the score's paper selects" if selects_globally else "within each class"
        return ResolvedSelection(replace(selection, class_balanced=not selects_globally),
                                 f"mode {selection.mode!r} was requested, {scope}{ignored}", score, used)
    n = len(labels)
    fraction = resolve_count(selection.keep, n) / n
    sizes = np.bincount(labels, minlength=num_classes)
    present = sizes[sizes > 0]
    balance = (
        f"within each class in proportion to its size (largest/smallest class {present.max() / present.min():.1f}x)"
    )
    if method != AUTO:
        cutoff = SMALL_BUDGET_HARD_CUTOFF if fraction <= SMALL_BUDGET else selection.ccs_hard_cutoff
        chosen = replace(selection, mode="ccs", window=None, class_balanced=True, ccs_hard_cutoff=cutoff)
        reason = (
            f"{score} was named, so it decides: CCS strata of {score} after dropping its hardest {cutoff:.0%} "
            f"(keeping {fraction:.1%}; the hardest are mostly noise at small budgets), {balance}"
        )
        return ResolvedSelection(chosen, reason, score, True)
    if fraction <= PROTOTYPES_UP_TO:
        chosen = replace(selection, mode="prototypes", window=None, class_balanced=True)
        reason = (
            f"Condense chose: keeping {fraction:.1%} (<= {PROTOTYPES_UP_TO:.0%}), one prototype per k-means cluster "
            f"of the proxy's features, {balance}; at these budgets prototypes beat random and the hardest samples "
            "lose to it. No score ranks them (name one to have it decide)"
        )
        return ResolvedSelection(chosen, reason, score, False)
    chosen = replace(selection, mode="ccs", window=None, class_balanced=True)
    reason = (
        f"Condense chose: keeping {fraction:.1%} (> {PROTOTYPES_UP_TO:.0%}), CCS strata of {score} after dropping "
        f"the hardest {selection.ccs_hard_cutoff:.0%}, {balance}"
    )
    return ResolvedSelection(chosen, reason, score, True)


def describe_selection(policy: dict) -> str:
    """A table title's words for a resolved selection (``ResolvedSelection.to_dict``): the score and policy, and
    plainly when the score was not used."""
    mode = policy["mode"]
    if mode == "ccs":
        words = f"CCS strata (hardest {policy['ccs_hard_cutoff']:.0%} dropped)"
    elif mode == "window":
        words = f"window {policy['window']}"
    else:
        words = {"prototypes": "class prototypes", "hardest": "the hardest", "easiest": "the easiest"}.get(mode, mode)
    if not policy["score_used"]:
        return f"{words} of the proxy's features; score used: no"
    return f"{policy['score']}, {words}"
