"""Long-tailed data (issue 37): how a budget is split across classes, and an ``auto`` that decides per class."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from engine.data.dataset import ImageDataset
from engine.data.subset import long_tailed_indices
from engine.pipeline.prune import run_prune
from engine.pipeline.prune_config import ProxyConfig, PruneConfig
from engine.select import class_budgets, select_indices
from engine.select.auto import resolve_auto
from engine.select.config import SelectionConfig

SIZES = [400, 120, 40, 10]
LABELS = np.repeat(np.arange(4), SIZES)


@pytest.mark.parametrize(("allocation", "expected"), [
    ("proportional", [114, 34, 11, 3]),
    ("equal", [56, 56, 40, 10]),  # the two small classes kept whole, the rest shared equally
])
def test_allocations_sum_to_the_budget_and_never_exceed_a_class(allocation: str, expected: list[int]) -> None:
    budget = class_budgets(LABELS, 4, 162, allocation)  # type: ignore[arg-type]
    assert budget.tolist() == expected


def test_square_root_allocation_lies_between_proportional_and_equal() -> None:
    budgets = {a: class_budgets(LABELS, 4, 162, a) for a in ("proportional", "sqrt", "equal")}  # type: ignore[arg-type]
    assert budgets["sqrt"].sum() == 162
    assert budgets["proportional"][0] > budgets["sqrt"][0] > budgets["equal"][0]
    assert budgets["proportional"][3] < budgets["sqrt"][3] <= budgets["equal"][3]


def test_an_allocation_of_every_sample_keeps_every_class_whole() -> None:
    for allocation in ("proportional", "sqrt", "equal"):
        assert class_budgets(LABELS, 4, len(LABELS), allocation).tolist() == SIZES  # type: ignore[arg-type]


def test_auto_clusters_classes_that_keep_few_and_takes_ccs_where_a_class_keeps_many() -> None:
    resolved = resolve_auto(SelectionConfig(keep=0.3, allocation="proportional"), LABELS, 4, prototypes_up_to_count=50)
    # Proportional: class 0 keeps 120, more than 50, so CCS; the others keep 36, 12 and 3: prototypes.
    assert [p.mode for p in resolved.per_class] == ["ccs", "prototypes", "prototypes", "prototypes"]
    assert resolved.needs_features and resolved.score_used and resolved.selection.mode == "ccs"
    assert "classes [1, 2, 3]" in resolved.reason and "at most 50 per class" in resolved.reason
    policy = resolved.to_dict("auto")
    assert policy["per_class_modes"] == ["ccs", "prototypes", "prototypes", "prototypes"]
    assert policy["allocation"] == "proportional"

    rng = np.random.default_rng(0)
    importance, features = rng.normal(size=len(LABELS)), rng.normal(size=(len(LABELS), 4))
    picked = select_indices(importance, LABELS, 4, resolved.selection, 0, features, resolved.per_class)
    assert np.bincount(LABELS[picked], minlength=4).tolist() == [120, 36, 12, 3]


def test_a_class_that_keeps_most_of_itself_takes_ccs() -> None:
    # Equal shares of 114: 35, 35, 34 and the 10 of class 3; classes 2 and 3 keep more than half of themselves.
    resolved = resolve_auto(SelectionConfig(keep=0.2, allocation="equal"), LABELS, 4)
    assert [p.mode for p in resolved.per_class] == ["prototypes", "prototypes", "ccs", "ccs"]
    assert "equal allocation" in resolved.reason


def test_without_a_count_limit_auto_is_the_budget_rule_of_balanced_data() -> None:
    proportional = SelectionConfig(keep=0.3, allocation="proportional")
    resolved = resolve_auto(proportional, LABELS, 4)
    assert resolved.per_class is None and resolved.selection.mode == "prototypes" and not resolved.score_used
    assert resolve_auto(replace(proportional, keep=0.6), LABELS, 4).selection.mode == "ccs"


def test_the_default_allocation_gives_classes_equal_shares_and_says_so() -> None:
    resolved = resolve_auto(SelectionConfig(keep=0.3), LABELS, 4)
    assert resolved.to_dict("auto")["allocation"] == "equal" and "equal allocation" in resolved.reason
    # 171 kept: the 10 and the 40 of the small classes whole (more than half of each: CCS keeps all of them),
    # the rest shared by the two large classes.
    assert [p.mode for p in resolved.per_class] == ["prototypes", "prototypes", "ccs", "ccs"]
    assert class_budgets(LABELS, 4, 171, "equal").tolist() == [61, 60, 40, 10]
    named = resolve_auto(SelectionConfig(keep=0.3), LABELS, 4, method="forgetting")
    assert named.selection.allocation == "equal" and "equal allocation" in named.reason
    # A requested mode keeps class proportions (what class-balanced selection means), resolved for the report.
    assert resolve_auto(SelectionConfig(keep=0.3, mode="hardest"), LABELS, 4).selection.allocation == "proportional"
    assert class_budgets(LABELS, 4, 171, "auto").tolist() == class_budgets(LABELS, 4, 171, "proportional").tolist()


def test_on_balanced_data_equal_shares_are_the_proportional_ones() -> None:
    balanced = np.repeat(np.arange(10), 500)
    for total in (50, 251, 1499, 2500, 4999):
        assert np.array_equal(class_budgets(balanced, 10, total, "equal"),
                              class_budgets(balanced, 10, total, "proportional"))


def test_long_tailed_indices_follow_an_exponential_profile() -> None:
    y = np.repeat(np.arange(5), 100)
    picked = long_tailed_indices(y, ratio=10, seed=0)
    counts = np.bincount(y[picked], minlength=5)
    assert counts[0] == 100 and counts[-1] == 10 and (np.diff(counts) < 0).all()
    assert np.array_equal(picked, long_tailed_indices(y, ratio=10, seed=0)) and (np.diff(picked) > 0).all()


def test_a_prune_job_on_long_tailed_data_reports_each_class_before_and_after(digits: ImageDataset) -> None:
    data = digits.with_train_subset(long_tailed_indices(digits.y_train, ratio=10, seed=0))
    # The default job: allocation and policy both resolved by auto, and reported per class.
    config = PruneConfig(selection=SelectionConfig(keep=0.2), proxy=ProxyConfig(width=8, epochs=2), evaluation=None,
                         device="cpu")
    report = run_prune(data, config).report
    selection = report["selection"]
    before, after = selection["full_class_counts"], selection["per_class_counts"]
    assert sum(after) == selection["kept"] and all(a <= b for a, b in zip(after, before, strict=True))
    policy = selection["policy"]
    assert policy["allocation"] == "equal" and "equal allocation" in policy["reason"]
    # Equal shares, a class smaller than its share kept whole; such a class takes CCS (it keeps more than half of
    # itself), the others keep prototypes.
    share = max(after)
    assert all(a == b or a >= share - 1 for a, b in zip(after, before, strict=True))
    modes = policy["per_class_modes"]
    assert modes is not None and len(modes) == data.num_classes
    assert all(m == ("ccs" if a > -(-b // 2) else "prototypes") for m, a, b in zip(modes, after, before, strict=True))


def test_ccs_in_a_class_that_keeps_most_of_itself_drops_only_what_the_budget_allows() -> None:
    importance = np.arange(20, dtype=np.float64)  # 19 is the hardest
    picked = select_indices(importance, np.zeros(20, np.int64), 1,
                            SelectionConfig(keep=19, mode="ccs", class_balanced=True, ccs_hard_cutoff=0.3))
    assert sorted(picked.tolist()) == list(range(19))  # one dropped, not the 6 a 30% cutoff would drop
