"""``method: auto`` and ``mode: auto``: the score and policy for the job's budget, with the reason recorded, and
never a policy that ignores a score the user named.

What is worth keeping depends on the budget (Sorscher et al., "Beyond neural scaling laws", NeurIPS 2022,
Sec. 3): when data are scarce the prototypical samples win and the hardest lose, because at small
budgets the hardest are mostly ambiguous or mislabelled (001 Sec. 4.4, Fig. 1; Zheng et al., CCS,
ICLR 2023). Measured on this project's CPU machine (MNIST and Fashion-MNIST, 500 images per class, ConvNet
width 16 proxy and evaluation, 3 seeds; ``bench/results/prune-cpu.md``): per-class k-means prototypes of the
proxy's features beat random at keep 1, 5, 10, 30 and 50% on both, while keeping the hardest by EL2N lost to
random at every budget on Fashion-MNIST and below 10% on MNIST. Above half the data k-means with that many
clusters costs more than the proxy run and was not measured; CCS strata of EL2N are kept there (Zheng et al.:
at or above random across their sweep), dropping the hardest ``ccs_hard_cutoff`` as likely noise.

So when Condense chooses (``method: auto``), it keeps prototypes up to half the data and CCS strata of EL2N
above, and says the score was not used at the small budgets. A score the user names drives the selection:
``mode: auto`` then resolves to the policy measured best *for that score* at the budget (``MEASURED_BEST``):
``bench.prune --parts policies`` (same scale, 3 seeds, gain over random paired by seed) tried each score's CCS
(hardest 30% dropped up to keep 10%, 10% above, as the CCS reference runs), the easiest, a block around the
median (Moderate-DS's rule for any score), the hardest after dropping the hardest 30% or 10%, and the hardest,
and keeps per score and keep the one whose worse gain across MNIST and Fashion-MNIST is highest. What that
measured (``bench/results/prune-cpu.md``): at keep 30% Dyn-Unc and TDDS (the hardest: +1.56 / +1.71 and
+1.67 / +1.37 points on MNIST / Fashion-MNIST) and Moderate (CCS: +1.00 / +0.44) beat random on both, EVA's
window beats it on MNIST; at keep 5% and 10% no score's best policy beats random on both datasets (most are
within noise, some still lose), which is why ``method: auto`` keeps prototypes there. The easiest samples of
every score lost to random at keep 5% on MNIST (with a verdict), unlike the prototypes of the proxy's
features. Above 30% (not measured per score) a named score keeps ``ABOVE_MEASURED``. Prototypes (which
read only the proxy's features) are used with a named score only when asked for by name, and the report then
says ``score_used: false``.

Auto always selects within each class: 001 Tables 3/4 show even pruning across classes beating global pruning
under aggressive compression, and a global rule shifts an imbalanced dataset's class distribution further. The
budget is split across classes by ``SelectionConfig.allocation``: its default, ``auto``, gives ``mode: auto``
equal shares per class, a class smaller than its share kept whole (measured on long-tailed data,
``engine.select.allocation``); a job may ask for shares in proportion to class size or its square root. The policy
is then decided per class from what that class keeps: prototypes where it keeps at most ``PROTOTYPES_UP_TO`` of
itself (and at most ``PROTOTYPES_UP_TO_COUNT`` samples, when a limit is set), CCS strata of the score where it
keeps more (a small class kept whole or nearly so), and ``per_class_modes`` in the report says which class got
which. On balanced data every class gets the same policy, the rule above.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from engine.scores import ParamProblem, check_score_params
from engine.scores.params import param_field
from engine.select.allocation import class_budgets, describe_allocation, resolve_allocation
from engine.select.config import SelectionConfig
from engine.select.registry import POLICIES
from engine.select.budget import resolve_count

# Largest kept fraction for which auto clusters (measured up to here; see the module docstring).
PROTOTYPES_UP_TO = 0.5
# Largest count a class may keep and still be clustered (issue 37: with many samples kept per class the
# hard-leaning CCS strata might win, Sorscher et al. 2022). None: no limit, the kept fraction alone decides.
# bench.prune_longtail measured limits of 50 and 100 with the default's equal shares: their gains over random with
# the same per-class counts stayed within noise of no limit (mean over keeps 5/10/30% +1.22 / +1.27 against +1.27 on
# MNIST ratio 10, +1.04 / +1.48 against +1.48 on Fashion-MNIST ratio 10), and a limit would move balanced classes
# of 500 to CCS at keep 30%, where EL2N's CCS lost to random on Fashion-MNIST (-1.20, worse) and the prototypes
# gained +0.59 (within noise; both bench.prune --parts honesty). So no limit is set.
PROTOTYPES_UP_TO_COUNT: int | None = None
AUTO = "auto"
# The score Condense records and uses when it chooses: EL2N (Paul et al. 2021), the best measured here.
AUTO_SCORE = "el2n"
# The policy each named score resolves to, per largest keep fraction: ``bench.prune --parts policies``
# (``bench.prune.best_policies`` of ``bench/results/prune-cpu.json``; test_bench_prune_policies checks they agree).
MEASURED_BEST: dict[str, tuple[tuple[float, str], ...]] = {
    "el2n": ((0.05, "median"), (0.1, "drop 30%"), (0.3, "ccs 10%")),
    "forgetting": ((0.05, "ccs 30%"), (0.1, "ccs 30%"), (0.3, "ccs 10%")),
    "aum": ((0.05, "ccs 30%"), (0.1, "drop 30%"), (0.3, "ccs 10%")),
    "entropy": ((0.05, "median"), (0.1, "ccs 30%"), (0.3, "ccs 10%")),
    "dyn_unc": ((0.05, "median"), (0.1, "drop 30%"), (0.3, "hardest")),
    "tdds": ((0.05, "median"), (0.1, "drop 30%"), (0.3, "hardest")),
    "moderate": ((0.05, "ccs 30%"), (0.1, "ccs 30%"), (0.3, "ccs 10%")),
    "grand": ((0.05, "median"), (0.1, "drop 30%"), (0.3, "ccs 10%")),
    "eva": ((0.05, "median"), (0.1, "drop 30%"), (0.3, "drop 10%")),
}
# Above the largest budget measured per score, a named score keeps CCS strata after dropping the hardest 10%
# (the CCS paper's setting at low pruning rates; not measured here).
ABOVE_MEASURED = "ccs 10%"


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


def _share(label: str) -> float:
    return float(label.split()[1].rstrip("%")) / 100


def named_policy(label: str, selection: SelectionConfig, fraction: float) -> SelectionConfig:
    """The selection of one policy a named score can resolve to, within each class: ``ccs N%`` (CCS strata after
    dropping the hardest N%), ``drop N%`` (the hardest of what is left once the hardest N% are dropped),
    ``median`` (the block of the ranking centred on its median, as Moderate-DS keeps for its own score),
    ``easiest`` or ``hardest``; ``fraction`` is the kept share, which the median block's upper end needs."""
    base = replace(selection, window=None, class_balanced=True)
    if label.startswith("ccs "):
        return replace(base, mode="ccs", ccs_hard_cutoff=_share(label))
    if label.startswith("drop "):
        return replace(base, mode="window", window=(0.0, 1 - _share(label)))
    if label == "median":
        return replace(base, mode="window", window=(0.0, min(1.0, 0.5 + fraction / 2)))
    if label in ("easiest", "hardest"):
        return replace(base, mode=label)
    raise ValueError(f"unknown policy {label!r}")


def policy_for(score: str, fraction: float) -> tuple[str, float | None]:
    """The policy a named ``score`` resolves to at keep ``fraction`` and the largest keep its measurement covers
    (None where no measurement covers it: above the largest measured budget, or a score the benchmark has not
    measured, such as ``random``; ``ABOVE_MEASURED`` applies there)."""
    for up_to, label in MEASURED_BEST.get(score, ()):
        if fraction <= up_to + 1e-9:
            return label, up_to
    return ABOVE_MEASURED, None


@dataclass(frozen=True)
class ResolvedSelection:
    """The concrete score and policy and why, for the report.

    ``per_class`` holds one policy per class where ``auto`` chose differently for classes that keep few samples
    and classes that keep many; ``selection`` then sets the budget and allocation, and its mode is the policy of
    the class that keeps most.
    """

    selection: SelectionConfig
    reason: str
    score: str  # the score that ranks the samples (a proxy run records it also when the policy ignores it)
    score_used: bool  # whether the kept set depends on the score
    per_class: tuple[SelectionConfig, ...] | None = None

    @property
    def needs_features(self) -> bool:
        return any(POLICIES.get(p.mode).needs_features for p in (self.selection, *(self.per_class or ())))

    def to_dict(self, requested: str) -> dict:
        return {
            "requested": requested,
            "mode": self.selection.mode,
            "window": self.selection.window,
            "class_balanced": self.selection.class_balanced,
            "allocation": self.selection.allocation if self.selection.class_balanced else None,
            "ccs_hard_cutoff": self.selection.ccs_hard_cutoff if self.selection.mode == "ccs" else None,
            "per_class_modes": None if self.per_class is None else [p.mode for p in self.per_class],
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
    prototypes_up_to_count: int | None = PROTOTYPES_UP_TO_COUNT,
) -> ResolvedSelection:
    """The score and policy of a job with score ``method`` (``auto``: Condense chooses) and ``selection``:
    ``mode='auto'`` replaced by the policy for its budget; other modes keep theirs, with an unset
    ``class_balanced`` resolved to the score's own rule (``selects_globally``, from its registry)."""
    score = AUTO_SCORE if method == AUTO else method
    selection = replace(selection, allocation=resolve_allocation(selection.allocation, selection.mode == AUTO))
    if selection.mode != AUTO:
        used = POLICIES.get(selection.mode).reads_score
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
        f"within each class by {selection.allocation} allocation ({describe_allocation(selection.allocation)}; "
        f"largest/smallest class {present.max() / present.min():.1f}x)"
    )
    if method != AUTO:
        label, measured_up_to = policy_for(score, fraction)
        chosen = named_policy(label, selection, fraction)
        evidence = (
            f"the best of the policies measured for {score} at keeps up to {measured_up_to:.0%} (bench.prune --parts "
            "policies, MNIST and Fashion-MNIST)" if measured_up_to is not None
            else "no measurement covers this budget for it; the CCS paper's setting"
        )
        reason = (
            f"{score} was named, so it decides: {_words(chosen.mode, chosen.window, chosen.ccs_hard_cutoff)} of "
            f"{score} (keeping {fraction:.1%}), {evidence}, {balance}"
        )
        return ResolvedSelection(chosen, reason, score, True)
    return _chosen_by_condense(selection, labels, num_classes, score, fraction, balance, prototypes_up_to_count)


def clusters(kept: int, size: int, up_to_count: int | None) -> bool:
    """Whether ``auto`` keeps prototypes in a class of ``size`` samples that keeps ``kept``."""
    # ceil: a class's budget is a whole count, one above its exact share where rounding hands it the remainder
    return kept <= math.ceil(PROTOTYPES_UP_TO * size - 1e-9) and (up_to_count is None or kept <= up_to_count)


def _chosen_by_condense(
    selection: SelectionConfig, labels: np.ndarray, num_classes: int, score: str, fraction: float, balance: str,
    up_to_count: int | None,
) -> ResolvedSelection:
    """``method: auto``: per class, prototypes where it keeps few samples and CCS strata of ``score`` where it
    keeps many (module docstring)."""
    sizes = np.bincount(labels, minlength=num_classes)
    budgets = class_budgets(labels, num_classes, resolve_count(selection.keep, len(labels)), selection.allocation)
    prototypes = replace(selection, mode="prototypes", window=None, class_balanced=True)
    ccs = replace(selection, mode="ccs", window=None, class_balanced=True)
    clustered = [clusters(int(b), int(n), up_to_count) for b, n in zip(budgets, sizes, strict=True)]
    limit = f" and at most {up_to_count} per class" if up_to_count is not None else ""
    why_prototypes = (
        f"one prototype per k-means cluster of the proxy's features where a class keeps at most "
        f"{PROTOTYPES_UP_TO:.0%} of itself{limit} (at these budgets prototypes beat random and the hardest samples "
        "lose to it)"
    )
    why_ccs = f"CCS strata of {score} after dropping the hardest {selection.ccs_hard_cutoff:.0%}"
    kept = f"keeping {fraction:.1%}, {balance}"
    if all(clustered):
        reason = f"Condense chose: {kept}; {why_prototypes}. No score ranks them (name one to have it decide)"
        return ResolvedSelection(prototypes, reason, score, False)
    if not any(clustered):
        return ResolvedSelection(ccs, f"Condense chose: {kept}; {why_ccs} in every class", score, True)
    few = [c for c in range(num_classes) if clustered[c] and sizes[c] > 0]
    reason = (f"Condense chose: {kept}; {why_prototypes}: classes {few}; {why_ccs} in the classes that keep more")
    largest = int(np.argmax(budgets))
    per_class = tuple(prototypes if clustered[c] else ccs for c in range(num_classes))
    return ResolvedSelection(per_class[largest], reason, score, True, per_class)


def _words(mode: str, window: tuple[float, float] | None, cutoff: float | None) -> str:
    if mode == "ccs":
        return f"CCS strata (hardest {cutoff:.0%} dropped)"
    if mode == "window" and window is not None:
        return f"the hardest below the {window[1]:.0%} percentile" if window[0] == 0 else f"window {window}"
    return {"prototypes": "class prototypes", "hardest": "the hardest", "easiest": "the easiest"}.get(mode, mode)


def describe_selection(policy: dict) -> str:
    """A table title's words for a resolved selection (``ResolvedSelection.to_dict``): the score and policy, and
    plainly when the score was not used."""
    words = _words(policy["mode"], policy["window"], policy.get("ccs_hard_cutoff"))
    if not policy["score_used"]:
        return f"{words} of the proxy's features; score used: no"
    return f"{policy['score']}, {words}"
