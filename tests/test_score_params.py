"""The scores' parameter specs and the check that applies them before any training: every value an
accumulator would trip over at run time (or that would leave every sample with the same score) is
reported up front, naming the field as the API does."""

from __future__ import annotations

import inspect
import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cli.main import app as cli_app
from engine.pipeline.prune_config import ProxyConfig
from engine.pipeline.scoring import compute_scores
from engine.scores import Param, ParamProblem, check_score_params, describe_params, get_score, score_names
from engine.scores.params import param_field
from tests.conftest import make_dataset

CPU = torch.device("cpu")
DYNAMIC = [n for n in score_names() if get_score(n).accumulator is not None]
# Parameters of the pipeline around the accumulator, not of the accumulator itself.
PIPELINE_PARAMS = {"seeds"}


@pytest.mark.parametrize("name", DYNAMIC)
def test_specs_are_the_accumulators_parameters_with_their_defaults(name: str) -> None:
    spec = get_score(name)
    signature = inspect.signature(spec.accumulator)  # type: ignore[arg-type]
    own = {k: p.default for k, p in signature.parameters.items() if k not in ("num_samples", "num_classes", "epochs", "device")}
    assert own == {k: p.default for k, p in spec.params.items() if k not in PIPELINE_PARAMS}


def test_every_parameter_is_documented() -> None:
    lines = describe_params()
    assert len(lines) == sum(len(get_score(n).params) for n in score_names())
    assert "tdds.window: integer >= 3: epochs per window (K); default half the epochs in range; capped at the range" in lines
    assert "tdds.beta: number > 0 and <= 1, default 0.9: EMA weight of the latest window; earlier ones decay by (1 - beta)" in lines
    assert "el2n.seeds: integer >= 1 and <= 20, default 4: independently initialised proxy runs averaged" in lines


@pytest.mark.parametrize(
    ("param", "value", "problem"),
    [
        (Param(3, int, "h", minimum=2), 2, None),
        (Param(3, int, "h", minimum=2), 1, "must be >= 2"),
        (Param(3, int, "h", maximum=20), 21, "must be <= 20"),
        (Param(3, int, "h"), 2.0, "must be an integer, not 2.0"),
        (Param(3, int, "h"), True, "must be an integer, not a boolean"),
        (Param(3, int, "h"), "3", "must be an integer, not a string"),
        (Param(3, int, "h"), None, "must be an integer, not null"),
        (Param(3, int, "h"), [3], "must be an integer, not a list"),
        (Param(0.5, float, "h", minimum=0, exclusive_minimum=True), 1, None),
        (Param(0.5, float, "h", minimum=0, exclusive_minimum=True), 0.0, "must be > 0"),
        (Param(0.5, float, "h"), math.nan, "must be a finite number, not nan"),
        (Param(0.5, float, "h"), -math.inf, "must be a finite number, not -inf"),
        (Param(0.5, float, "h"), {"a": 1}, "must be a number, not an object"),
    ],
)
def test_a_param_checks_type_finiteness_and_bounds(param: Param, value: object, problem: str | None) -> None:
    assert param.problem(value) == problem


def test_field_names_are_short_printable_ascii() -> None:
    assert param_field("window") == "score_params.window"
    assert param_field("win\x00dow") == "score_params.win\\x00dow"
    assert param_field("fenêtre") == "score_params.fen\\xeatre"
    assert param_field("w" * 10_000_000) == "score_params." + "w" * 40 + "..."


@pytest.mark.parametrize(
    ("name", "params", "epochs", "expected"),
    [
        ("tdds", {"windw": 3}, 10, [("score_params.windw", "unknown parameter of tdds; known: window, beta, start_epoch, end_epoch")]),
        ("moderate", {"window": 3}, 10, [("score_params.window", "moderate takes no parameters")]),
        ("random", {"seeds": 2}, 10, [("score_params.seeds", "random takes no parameters")]),
        ("tdds", {"window": 2, "beta": 2}, 10, [("score_params.window", "must be >= 3"), ("score_params.beta", "must be <= 1")]),
        # Constraints across parameters and the run are checked once every value is valid.
        ("tdds", {"window": 2}, 1, [("score_params.window", "must be >= 3")]),
        ("tdds", {}, 2, [("proxy.epochs", "tdds takes the spread of the changes between epochs: it needs at least 3 epochs")]),
        ("tdds", {"start_epoch": 4}, 5, [("score_params.start_epoch", "leaves 4..5 to score; tdds needs at least 3 epochs in its range")]),
        ("tdds", {"end_epoch": 2}, 5, [("score_params.end_epoch", "leaves 1..2 to score; tdds needs at least 3 epochs in its range")]),
        ("tdds", {"start_epoch": 4, "end_epoch": 3}, 5, [("score_params.start_epoch", "leaves 4..3 to score; tdds needs at least 3 epochs in its range")]),
        ("tdds", {"end_epoch": 6}, 5, [("score_params.end_epoch", "is past the last epoch (5) of the proxy run (proxy.epochs)")]),
        ("tdds", {"start_epoch": 6}, 5, [("score_params.start_epoch", "is past the last epoch (5) of the proxy run (proxy.epochs)")]),
        ("dyn_unc", {"window": 5}, 1, [("proxy.epochs", "dyn_unc takes standard deviations over windows of at least 2 epochs")]),
        ("eva", {}, 2, [("proxy.epochs", "eva takes variances within an early and a late half of the run: it needs at least 3 epochs")]),
        ("eva", {"early_end": 1}, 2, [("score_params.early_end", "leaves windows 1..1 and 2..2 of one epoch each; eva needs at least 2 epochs in one of them")]),
        ("eva", {"early_start": 4}, 6, [("score_params.early_start", "is after the early window's end, epoch 3")]),
        ("eva", {"late_start": 7}, 6, [("score_params.late_start", "is past the last epoch (6) of the proxy run (proxy.epochs)")]),
        ("el2n", {"epoch": 4}, 3, [("score_params.epoch", "is past the last epoch (3) of the proxy run (proxy.epochs)")]),
        ("grand", {"seeds": 0}, 3, [("score_params.seeds", "must be >= 1")]),
        ("el2n", {"epoch": 3, "seeds": 20}, 3, []),
        ("tdds", {"window": 50, "beta": 1, "start_epoch": 2, "end_epoch": 4}, 4, []),
        ("eva", {"early_end": 2}, 2, []),
        ("forgetting", {}, 1, []),
    ],
)
def test_check_names_each_field_at_fault(name: str, params: dict[str, Any], epochs: int, expected: list[tuple[str, str]]) -> None:
    assert check_score_params(name, params, epochs) == [ParamProblem(f, m) for f, m in expected]


def test_an_unknown_score_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown pruning method 'magic'"):
        check_score_params("magic", {}, 10)


def _feed(name: str, epochs: int, params: dict[str, Any]) -> np.ndarray:
    n, c = 6, 3
    generator = torch.Generator().manual_seed(epochs)
    probs = torch.randn(epochs, n, c, generator=generator).mul(2).softmax(-1)
    features = torch.randn(n, 4, generator=generator)
    targets = torch.tensor([0, 1, 2, 0, 1, 2])
    kwargs = {k: v for k, v in params.items() if k not in PIPELINE_PARAMS}
    acc = get_score(name).accumulator(n, c, epochs, CPU, **kwargs)  # type: ignore[misc]
    for e in range(1, epochs + 1):
        acc.on_epoch(e, probs[e - 1].log(), probs[e - 1], targets)
        if e in acc.eval_epochs:
            acc.on_eval(e, probs[e - 1].log(), features, targets)
    return acc.result()


def _grid(name: str) -> list[dict[str, Any]]:
    """Every combination of a few values (absent included) of each of the score's parameters."""
    values: dict[str, list[Any]] = {
        "window": [2, 3, 4, 10], "beta": [0.5, 1], "seeds": [1], "epoch_fraction": [0.5, 1],
        **{k: [1, 2, 3, 4, 5] for k in ("start_epoch", "end_epoch", "early_start", "early_end", "late_start", "epoch")},
    }
    names = list(get_score(name).params)
    absent = object()
    combos = itertools.product(*([absent, *values[k]] for k in names))
    return [{k: v for k, v in zip(names, combo) if v is not absent} for combo in combos]


@pytest.mark.parametrize("name", DYNAMIC)
def test_what_the_check_accepts_runs_and_scores_samples_apart(name: str) -> None:
    """The check against the accumulators themselves: whatever it accepts constructs, runs and gives
    samples different scores; whatever the accumulator refuses (ValueError) the check reports first."""
    accepted = 0
    for epochs, params in itertools.product(range(1, 6), _grid(name)):
        problems = check_score_params(name, params, epochs)
        try:
            scores = _feed(name, epochs, params)
        except ValueError:
            assert problems, (epochs, params)
            continue
        if not problems:
            accepted += 1
            assert np.ptp(scores) > 0, (epochs, params, scores)
    assert accepted > 0


def test_scoring_refuses_parameters_it_cannot_run_before_training() -> None:
    rng = np.random.default_rng(0)
    data = make_dataset(rng.random((30, 1, 8, 8)), np.arange(30) % 3, rng.random((6, 1, 8, 8)), np.arange(6) % 3)
    # Before: dyn_unc gave every sample 0 after a 1-epoch run; the misspelt key was a TypeError in the accumulator.
    with pytest.raises(ValueError, match=r"dyn_unc proxy\.epochs: .*at least 2 epochs"):
        compute_scores(data, ["dyn_unc"], ProxyConfig(width=4, epochs=1))
    with pytest.raises(ValueError, match=r"tdds score_params\.windw: unknown parameter of tdds"):
        compute_scores(data, ["tdds"], ProxyConfig(width=4, epochs=3), params={"tdds": {"windw": 2}})


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--method", "tdds", "--epochs", "2"], "error in --epochs: tdds takes the spread"),
        (["--method", "tdds", "--score-param", "windw=3"], "error in --score-param windw: unknown parameter of tdds"),
        (["--method", "el2n", "--score-param", "epoch=2.5"], "error in --score-param epoch: must be an integer"),
        (["--method", "el2n", "--score-param", "epoch=three"], "expected KEY=NUMBER"),
    ],
)
def test_cli_refuses_parameters_before_loading_data(tmp_path: Path, args: list[str], says: str) -> None:
    result = CliRunner().invoke(cli_app, ["prune", "builtin:digits", "--out", str(tmp_path / "out"), *args])
    assert result.exit_code == 2, result.output
    assert says in " ".join(result.output.split()), result.output
    assert not (tmp_path / "out").exists()
