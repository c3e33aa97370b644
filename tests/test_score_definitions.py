"""Each accumulator against a direct, non-streaming computation of its paper's definition."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.scores import get_score, score_names

CPU = torch.device("cpu")


def random_trajectory(epochs: int, n: int, c: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(epochs, n, c, generator=g).mul(2).softmax(-1)


def feed_epochs(name: str, probs: torch.Tensor, targets: torch.Tensor, **params) -> np.ndarray:
    epochs, n, c = probs.shape
    acc = get_score(name).accumulator(n, c, epochs, CPU, **params)
    for e in range(epochs):
        acc.on_epoch(e + 1, probs[e].log(), probs[e], targets)
    return acc.result()


def test_registry_lists_every_score_of_the_issue() -> None:
    assert set(score_names()) == {"random", "el2n", "grand", "forgetting", "aum", "entropy", "dyn_unc", "tdds", "eva", "moderate"}
    assert get_score("aum").higher_is_important is False


def test_tdds_matches_its_windowed_ema_definition() -> None:
    epochs, n, c, window, beta = 9, 6, 4, 4, 0.9
    probs = random_trajectory(epochs, n, c)
    targets = torch.randint(0, c, (n,))
    got = feed_epochs("tdds", probs, targets, window=window, beta=beta)

    p = probs.double().numpy()
    contrib = [np.abs(p[t] * (np.log(p[t] + 1e-8) - np.log(p[t - 1] + 1e-8))).sum(1) for t in range(1, epochs)]
    windows = epochs - window + 1
    expected = np.zeros(n)
    for k in range(windows):
        d = np.stack(contrib[k : k + window - 1])
        spread = np.linalg.norm(d - d.mean(0), axis=0)
        expected += spread * beta * (1 - beta) ** (windows - 1 - k)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_tdds_respects_its_epoch_range() -> None:
    probs = random_trajectory(10, 5, 3, seed=1)
    targets = torch.zeros(5, dtype=torch.long)
    ranged = feed_epochs("tdds", probs, targets, window=3, start_epoch=4, end_epoch=8)
    direct = feed_epochs("tdds", probs[3:8], targets, window=3)
    np.testing.assert_allclose(ranged, direct, rtol=1e-6)


def test_dyn_unc_is_the_mean_windowed_std_of_the_target_probability() -> None:
    epochs, n, c, window = 8, 5, 3, 3
    probs = random_trajectory(epochs, n, c, seed=2)
    targets = torch.tensor([0, 1, 2, 0, 1])
    got = feed_epochs("dyn_unc", probs, targets, window=window)
    target_p = probs.double().numpy()[:, np.arange(n), targets.numpy()]
    expected = np.mean([target_p[k : k + window].std(0) for k in range(epochs - window + 1)], axis=0)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_eva_sums_the_variances_of_the_error_norm_in_two_windows() -> None:
    epochs, n, c = 8, 4, 3
    probs = random_trajectory(epochs, n, c, seed=3)
    targets = torch.tensor([0, 1, 2, 0])
    got = feed_epochs("eva", probs, targets, early_end=3, late_start=5)
    p = probs.double().numpy()
    onehot = np.eye(c)[targets.numpy()]
    s = np.linalg.norm(p - onehot, axis=2)
    np.testing.assert_allclose(got, s[0:3].var(0) + s[4:8].var(0), rtol=1e-6, atol=1e-12)


def test_forgetting_counts_correct_to_wrong_transitions_and_unlearned_count_most() -> None:
    acc = get_score("forgetting").accumulator(3, 2, 4, CPU)
    targets = torch.zeros(3, dtype=torch.long)
    # correctness per epoch for samples 0, 1, 2
    script = [[1, 1, 0], [0, 1, 0], [1, 1, 0], [0, 1, 0]]
    for epoch, row in enumerate(script, start=1):
        logits = torch.tensor([[1.0, 0.0] if ok else [0.0, 1.0] for ok in row])
        acc.on_epoch(epoch, logits, logits.softmax(1), targets)
    assert acc.result().tolist() == [2, 0, 4 + 1]


def test_aum_averages_the_assigned_minus_largest_other_logit() -> None:
    acc = get_score("aum").accumulator(2, 3, 2, CPU)
    targets = torch.tensor([0, 1])
    for epoch, logits in enumerate([[[3.0, 1.0, 2.0], [0.0, 1.0, 4.0]], [[1.0, 1.0, 0.0], [0.0, 5.0, 1.0]]], start=1):
        acc.on_epoch(epoch, torch.tensor(logits), torch.tensor(logits).softmax(1), targets)
    np.testing.assert_allclose(acc.result(), [(1 + 0) / 2, (-3 + 4) / 2])


def test_el2n_grand_entropy_and_moderate_from_an_eval_pass() -> None:
    logits = torch.tensor([[4.0, 0.0], [0.0, 0.0], [0.0, 4.0], [2.0, 0.0]])
    feats = torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [9.0, 0.0]])
    targets = torch.tensor([0, 0, 0, 0])
    p = logits.softmax(1)
    err = (p - torch.tensor([1.0, 0.0])).norm(dim=1)
    for name, expected in [
        ("el2n", err),
        ("grand", err * (feats.pow(2).sum(1) + 1).sqrt()),
        ("entropy", -(p * p.log()).sum(1)),
    ]:
        acc = get_score(name).accumulator(4, 2, 3, CPU)
        epoch = max(acc.eval_epochs)
        acc.on_eval(epoch, logits, feats, targets)
        np.testing.assert_allclose(acc.result(), expected.double().numpy(), rtol=1e-6, err_msg=name)
    five = torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 0.0], [12.0, 0.0]])
    moderate = get_score("moderate").accumulator(5, 2, 3, CPU)
    moderate.on_eval(3, torch.zeros(5, 2), five, torch.zeros(5, dtype=torch.long))
    # Class median feature is 3 -> distances 2, 1, 0, 1, 9 with median 1: the samples at that
    # moderate distance score highest, the centre next, the far outlier last.
    np.testing.assert_allclose(moderate.result(), [-1.0, 0.0, -1.0, 0.0, -8.0])


def test_el2n_scores_at_the_requested_early_epoch() -> None:
    acc = get_score("el2n").accumulator(2, 2, 10, CPU, epoch=3)
    assert acc.eval_epochs == frozenset({3})
    assert get_score("el2n").accumulator(2, 2, 5, CPU, epoch=50).eval_epochs == frozenset({5})


@pytest.mark.parametrize("name", [n for n in score_names() if get_score(n).accumulator is not None])
def test_accumulator_state_round_trips_for_checkpoint_resume(name: str) -> None:
    probs = random_trajectory(6, 5, 3, seed=4)
    targets = torch.tensor([0, 1, 2, 0, 1])
    spec = get_score(name)
    whole = spec.accumulator(5, 3, 6, CPU)
    first = spec.accumulator(5, 3, 6, CPU)
    logits = probs.log()
    feats = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))

    def run(acc, epochs):
        for e in epochs:
            acc.on_epoch(e, logits[e - 1], probs[e - 1], targets)
            if e in acc.eval_epochs:
                acc.on_eval(e, logits[e - 1], feats, targets)

    run(whole, range(1, 7))
    run(first, range(1, 4))
    resumed = spec.accumulator(5, 3, 6, CPU)
    resumed.load_state_dict({k: v.clone() for k, v in first.state_dict().items()})
    run(resumed, range(4, 7))
    np.testing.assert_allclose(resumed.result(), whole.result(), rtol=1e-6)
