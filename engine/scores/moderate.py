"""Moderate coreset (Xia et al., "Moderate Coreset: A Universal Method of Data Selection", ICLR 2023).

In the trained proxy's feature space each sample's distance to its class median (coordinate-wise
median of the class's features) is computed; Moderate keeps the samples whose distance is closest
to the class's median distance, neither too easy (close to the centre) nor too hard (far out).
The score is therefore -| d_i - median_{j in class(i)} d_j |: higher = closer to moderate = keep.
"""

from __future__ import annotations

from engine.scores.registry import ScoreSpec, register_score

register_score(
    ScoreSpec(
        name="moderate",
        title="Moderate (distance to class median)",
        reference="Xia et al. Moderate Coreset: A Universal Method of Data Selection for Real-world Data-efficient Deep Learning. ICLR 2023",
        higher_is_important=True,
        implementation="engine.scores.accumulators.moderate:ModerateAccumulator",
    )
)
