import numpy as np
import pytest

from engine.select import (
    SelectionError,
    class_budgets,
    class_distribution_kl,
    coreset_weights,
    importance_of,
    rank_by_importance,
    resolve_count,
    select_indices,
)
from engine.select.config import SelectionConfig


@pytest.fixture
def labelled() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), [400, 300, 200, 100])
    return rng.random(len(labels)), labels


def test_keep_fraction_or_count() -> None:
    assert resolve_count(0.1, 1000) == 100
    assert resolve_count(1.0, 1000) == 1000
    assert resolve_count(250, 1000) == 250
    with pytest.raises(SelectionError):
        resolve_count(0, 10)
    with pytest.raises(SelectionError):
        resolve_count(11, 10)
    with pytest.raises(SelectionError):
        resolve_count(2.5, 10)


def test_ranking_puts_the_most_important_first_for_either_sign() -> None:
    scores = np.array([0.2, 0.9, 0.5])
    assert rank_by_importance(importance_of(scores, True)).tolist() == [1, 2, 0]
    assert rank_by_importance(importance_of(scores, False)).tolist() == [0, 2, 1]


def test_hardest_and_easiest_global(labelled) -> None:
    imp, labels = labelled
    top = select_indices(imp, labels, 4, SelectionConfig(keep=0.1, mode="hardest", class_balanced=False))
    assert len(top) == 100 and set(top) == set(np.argsort(-imp)[:100])
    low = select_indices(imp, labels, 4, SelectionConfig(keep=0.1, mode="easiest", class_balanced=False))
    assert set(low) == set(np.argsort(imp)[:100])
    # Ordered most important first.
    assert np.all(np.diff(imp[top]) <= 0)


def test_class_balanced_keeps_class_proportions_and_zero_kl(labelled) -> None:
    imp, labels = labelled
    idx = select_indices(imp, labels, 4, SelectionConfig(keep=0.1, mode="hardest", class_balanced=True))
    assert np.bincount(labels[idx]).tolist() == [40, 30, 20, 10]
    assert class_distribution_kl(labels, idx, 4) == pytest.approx(0.0, abs=1e-9)
    for c in range(4):
        members = np.flatnonzero(labels == c)
        expected = members[np.argsort(-imp[members])[: [40, 30, 20, 10][c]]]
        assert set(idx[labels[idx] == c]) == set(expected)


def test_global_selection_can_shift_the_class_distribution() -> None:
    labels = np.repeat([0, 1], 100)
    imp = np.r_[np.ones(100), np.zeros(100)]
    idx = select_indices(imp, labels, 2, SelectionConfig(keep=0.5, mode="hardest", class_balanced=False))
    assert set(labels[idx]) == {0}
    assert class_distribution_kl(labels, idx, 2) > 1.0


def test_percentile_window_keeps_the_block_below_its_upper_edge(labelled) -> None:
    imp, labels = labelled
    idx = select_indices(imp, labels, 4, SelectionConfig(keep=0.1, mode="window", window=(0.7, 0.8), class_balanced=False))
    pct = np.argsort(np.argsort(imp)) / len(imp)
    assert len(idx) == 100 and np.all((pct[idx] >= 0.7) & (pct[idx] < 0.8))
    with pytest.raises(SelectionError, match="widen the window"):
        select_indices(imp, labels, 4, SelectionConfig(keep=0.2, mode="window", window=(0.7, 0.8), class_balanced=False))


def test_class_balanced_window_applies_per_class(labelled) -> None:
    imp, labels = labelled
    idx = select_indices(imp, labels, 4, SelectionConfig(keep=0.1, mode="window", window=(0.7, 0.8), class_balanced=True))
    for c in range(4):
        members = np.flatnonzero(labels == c)
        pct = np.argsort(np.argsort(imp[members])) / len(members)
        chosen = np.isin(members, idx)
        assert np.all((pct[chosen] >= 0.7) & (pct[chosen] < 0.8))


def test_ccs_drops_the_hardest_and_covers_the_score_range() -> None:
    rng = np.random.default_rng(1)
    imp = rng.random(2000)
    labels = np.zeros(2000, dtype=np.int64)
    cfg = SelectionConfig(keep=0.2, mode="ccs", ccs_hard_cutoff=0.1, ccs_strata=10, class_balanced=False)
    idx = select_indices(imp, labels, 1, cfg, seed=0)
    assert len(idx) == 400 and len(set(idx)) == 400
    cutoff = np.sort(imp)[::-1][200]
    assert imp[idx].max() <= cutoff
    # Coverage: every stratum of the remaining range is represented, unlike "keep hardest".
    hist, _ = np.histogram(imp[idx], bins=10, range=(imp.min(), cutoff))
    assert (hist > 0).all()
    assert np.array_equal(idx, select_indices(imp, labels, 1, cfg, seed=0))


def test_class_budgets_sum_to_total_and_respect_sizes() -> None:
    labels = np.repeat(np.arange(3), [5, 3, 1])
    budget = class_budgets(labels, 3, 4)
    assert budget.sum() == 4 and np.all(budget <= [5, 3, 1])


def test_weights_follow_importance_with_mean_one(labelled) -> None:
    imp, labels = labelled
    idx = select_indices(imp, labels, 4, SelectionConfig(keep=0.2, mode="hardest", class_balanced=True))
    w = coreset_weights(imp, idx)
    assert w.shape == idx.shape and w.mean() == pytest.approx(1.0, rel=1e-5)
    assert np.all(np.diff(w[np.argsort(-imp[idx])]) <= 1e-6)


def test_ccs_reports_how_many_it_really_dropped() -> None:
    """A class that keeps most of itself (here under equal allocation) cannot give up the configured share: the
    report's count is what _ccs dropped, not cutoff x N."""
    from engine.select.policies import ccs_dropped

    labels = np.repeat(np.arange(2), [90, 10])
    imp = np.random.default_rng(0).random(100)
    cfg = SelectionConfig(keep=20, mode="ccs", ccs_hard_cutoff=0.3, class_balanced=True, allocation="equal")
    idx = select_indices(imp, labels, 2, cfg, seed=0)
    # Class 0 keeps 10 of 90 and drops its hardest 27; class 1 keeps all 10 and can drop none.
    assert ccs_dropped(labels, 2, cfg) == 27
    hardest_of_0 = np.flatnonzero(labels == 0)[np.argsort(-imp[labels == 0], kind="stable")[:27]]
    assert not np.isin(hardest_of_0, idx).any() and np.isin(np.flatnonzero(labels == 1), idx).all()
    assert ccs_dropped(labels, 2, SelectionConfig(keep=20, mode="hardest", class_balanced=True)) is None
    assert ccs_dropped(labels, 2, SelectionConfig(keep=20, mode="ccs", ccs_hard_cutoff=0.3, class_balanced=False)) == 30


def keep_every_other(importance, features, k, config, rng, seed):  # a toy policy's function, registered below
    return np.arange(0, len(importance), 2)[:k]


def test_a_registered_policy_is_selected_with_no_other_change() -> None:
    """Adding a selection policy is its function plus a registration: select_indices dispatches through the
    registry (engine.select.registry), and a policy that does not read the score says so to auto's bookkeeping."""
    from engine.select.auto import resolve_auto
    from engine.select.registry import POLICIES, SelectionPolicy

    POLICIES.register(SelectionPolicy("every_other", "every second sample", f"{__name__}:keep_every_other",
                                      reads_score=False))
    try:
        labels = np.repeat(np.arange(2), 10)
        cfg = SelectionConfig(keep=6, mode="every_other", class_balanced=True)
        idx = select_indices(np.random.default_rng(0).random(20), labels, 2, cfg)
        assert sorted(idx.tolist()) == [0, 2, 4, 10, 12, 14]
        assert resolve_auto(cfg, labels, 2).score_used is False
    finally:
        POLICIES.unregister("every_other")
    with pytest.raises(SelectionError, match="unknown selection mode 'every_other'"):
        select_indices(np.zeros(20), labels, 2, cfg)
