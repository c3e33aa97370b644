"""The scores' accumulators: what the dynamics recorder folds each epoch into, one module per score.

These import torch; the definitions they implement (formula, sign, parameters and their checks) are in the
score's own module, ``engine.scores.<name>``, which imports none. A ``ScoreSpec`` names its accumulator as
``"engine.scores.accumulators.<name>:<Class>"``, imported only when a run needs it.
"""
