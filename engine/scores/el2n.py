"""EL2N and GraNd (Paul et al., "Deep Learning on a Data Diet", NeurIPS 2021).

EL2N(x, y) = || softmax(f_w(x)) - onehot(y) ||_2 for the model after an early epoch ``t``,
averaged over several independently initialised runs. Paul et al. score at epoch 20 of a 200-epoch
CIFAR run, averaged over 10 runs; 001 (Alg. 1, lines 2-7) likewise averages EL2N over its expert
models. The default epoch is therefore the same fraction, 0.1, of whatever proxy run is configured
(epoch 1 of the default 10), and the default averages SEEDS runs (see ``PARAMS``).
GraNd(x, y) = || grad_w loss(f_w(x), y) ||_2 at the same epoch. For the final linear layer
W h + b with cross-entropy, grad_W = (p - y) h^T and grad_b = p - y, so the last-layer GraNd is
exactly ||p - y|| * sqrt(||h||^2 + 1): no per-sample backward pass is needed. Both are larger for
harder samples; the paper keeps the highest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.scores.params import Param, ParamProblem, past_the_run, with_defaults
from engine.scores.registry import ScoreSpec, register_score

# Paul et al.'s epoch 20 of 200.
EPOCH_FRACTION = 0.1
# Paul et al. average 10 runs. Each extra seed is one more proxy run up to the early epoch only: at the default
# fraction 10 seeds cost 0.9 of a proxy run more, 4 seeds 0.3. `python -m bench.el2n_seeds` measured the
# Spearman correlation with the 10-run average on Fashion-MNIST (300 per class, ConvNet width 16, epoch 1 of
# 10): 1 seed 0.91, 2 seeds 0.97, 4 seeds 0.986, 6 seeds 0.995; the last-epoch single-run score 0.875.
SEEDS = 4

PARAMS = {
    "epoch": Param(None, int, "the early epoch scored (default: epoch_fraction of the proxy run)", minimum=1),
    "epoch_fraction": Param(EPOCH_FRACTION, float, "the early epoch as a fraction of the proxy run, when epoch is not set",
                            minimum=0, maximum=1, exclusive_minimum=True),
    "seeds": Param(SEEDS, int, "independently initialised proxy runs averaged", minimum=1, maximum=20),
}


def snapshot_epoch(epochs: int, epoch: int | None, epoch_fraction: float = EPOCH_FRACTION) -> int:
    """The early epoch to score at: the requested one, else ``epoch_fraction`` of the run (at least 1)."""
    wanted = epoch if epoch is not None else round(epoch_fraction * epochs)
    return max(1, min(epochs, wanted))


def check(params: Mapping[str, Any], epochs: int) -> list[ParamProblem]:
    # An epoch past the run would be scored at the last one instead: a request the run cannot honour.
    return past_the_run(params, ("epoch",), epochs)


def resolve(params: Mapping[str, Any], epochs: int) -> dict[str, Any]:
    values = with_defaults(params, PARAMS)
    return values | {"epoch": snapshot_epoch(epochs, values["epoch"], values["epoch_fraction"])}


register_score(
    ScoreSpec(
        name="el2n",
        title="EL2N (error L2-norm)",
        reference="Paul, Ganguli, Dziugaite. Deep Learning on a Data Diet. NeurIPS 2021",
        higher_is_important=True,
        implementation="engine.scores.accumulators.el2n:EL2NAccumulator",
        params=PARAMS,
        constraints=check,
        resolve=resolve,
    )
)
register_score(
    ScoreSpec(
        name="grand",
        title="GraNd (last-layer gradient norm)",
        reference="Paul, Ganguli, Dziugaite. Deep Learning on a Data Diet. NeurIPS 2021",
        higher_is_important=True,
        implementation="engine.scores.accumulators.el2n:GraNdAccumulator",
        params=PARAMS,
        constraints=check,
        resolve=resolve,
    )
)
