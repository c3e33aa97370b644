"""Prediction entropy of the trained proxy (the "uncertainty" family, as benchmarked in DeepCore).

H(x) = -sum_c p_c log p_c of the final model's softmax. Uncertain samples sit near the decision
boundary: higher entropy = more informative.
"""

from __future__ import annotations

from engine.scores.registry import ScoreSpec, register_score

register_score(
    ScoreSpec(
        name="entropy",
        title="Entropy (prediction uncertainty)",
        reference="Coleman et al. Selection via Proxy. ICLR 2020; Guo et al. DeepCore. DEXA 2022",
        higher_is_important=True,
        implementation="engine.scores.accumulators.entropy:EntropyAccumulator",
    )
)
