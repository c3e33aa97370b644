"""AUM, area under the margin (Pleiss et al., NeurIPS 2020).

At every training presentation the margin is the assigned-label logit minus the largest other
logit; AUM is its average over training. Mislabeled and hard samples have low (often negative)
AUM, so LOWER is harder: ``higher_is_important`` is False.

Orientation, decided per use: the score keeps Pleiss et al.'s reading (low AUM = hard or mislabelled),
which is what noise detection wants, and the selection mode picks the end: ``hardest`` keeps the low end
(label noise included), ``easiest`` keeps the high end, which is how 002 (Supplementary, baselines) runs AUM
for pruning ("larger AUM, higher importance"); ``ccs`` drops the hardest ``ccs_hard_cutoff`` either way.
``report.json`` records the orientation as ``score.higher_is_important``.
"""

from __future__ import annotations

from engine.scores.registry import ScoreSpec, register_score

register_score(
    ScoreSpec(
        name="aum",
        title="AUM (area under the margin)",
        reference="Pleiss et al. Identifying Mislabeled Data using the Area Under the Margin Ranking. NeurIPS 2020",
        higher_is_important=False,
        implementation="engine.scores.accumulators.aum:AUMAccumulator",
    )
)
