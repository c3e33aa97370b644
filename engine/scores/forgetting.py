"""Forgetting events (Toneva et al., "An Empirical Study of Example Forgetting", ICLR 2019).

Each time a sample is presented in a minibatch its correctness is compared with its previous
presentation; a transition correct -> wrong is a forgetting event. Samples never classified
correctly during training are "unlearned" and, as in the paper, count as forgotten the most: they
get ``epochs + 1``, more than any learned sample can reach. Higher = harder (the paper prunes the
unforgettable, lowest end).
"""

from __future__ import annotations

from engine.scores.registry import ScoreSpec, register_score

register_score(
    ScoreSpec(
        name="forgetting",
        title="Forgetting events",
        reference="Toneva et al. An Empirical Study of Example Forgetting during Deep Neural Network Learning. ICLR 2019",
        higher_is_important=True,
        implementation="engine.scores.accumulators.forgetting:ForgettingAccumulator",
    )
)
