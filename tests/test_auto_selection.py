"""``mode: auto`` and the prototype policy it resolves to at small and moderate budgets."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from app.schemas.jobs import PruneJobCreate, PruneThenDistillJobCreate
from engine.data.dataset import ImageDataset
from engine.distill.init import pick_pruned
from engine.pipeline.distill_config import PrunedStartConfig
from engine.pipeline.prune import run_prune
from engine.pipeline.prune_config import EvalConfig, ProxyConfig, PruneConfig
from engine.select import SelectionError, select_indices
from engine.scores import score_names
from engine.select.auto import (
    ABOVE_MEASURED,
    PROTOTYPES_UP_TO,
    check_method_params,
    describe_selection,
    named_policy,
    policy_for,
    resolve_auto,
)
from engine.select.config import SelectionConfig
from engine.select.prototypes import class_prototypes

OBJECT_ID = "0123456789abcdef01234567"


def test_prototypes_take_one_sample_from_each_cluster_nearest_its_centre() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[10.0, 0.0], [0.0, 10.0], [-10.0, 0.0]])
    blobs = [c + rng.normal(scale=0.5, size=(40, 2)) for c in centres]
    features = np.concatenate(blobs)
    picked = class_prototypes(features, 3, seed=0)
    assert sorted(picked // 40) == [0, 1, 2], "one prototype per blob"
    for i in picked:
        blob = features[(i // 40) * 40 : (i // 40 + 1) * 40]
        unit = blob / np.linalg.norm(blob, axis=1, keepdims=True)
        centre = unit.mean(0)
        # The kept sample is (about) the most central of its blob, not an outlier.
        assert np.linalg.norm(unit[i % 40] - centre) <= np.quantile(np.linalg.norm(unit - centre, axis=1), 0.2)


def test_prototypes_with_duplicate_features_still_keep_the_count() -> None:
    features = np.repeat(np.eye(3), 10, axis=0)  # three distinct points only
    picked = class_prototypes(features, 5, seed=0)
    assert len(picked) == len(set(picked.tolist())) == 5


def test_prototype_mode_without_features_names_what_is_missing() -> None:
    with pytest.raises(SelectionError, match="features"):
        select_indices(np.zeros(10), np.zeros(10, np.int64), 1, SelectionConfig(keep=0.5, mode="prototypes", class_balanced=True))


@pytest.mark.parametrize(("keep", "mode"), [(0.01, "prototypes"), (0.3, "prototypes"), (PROTOTYPES_UP_TO, "prototypes"), (0.7, "ccs")])
def test_auto_resolves_by_budget_and_always_balances_classes(keep: float, mode: str) -> None:
    labels = np.repeat(np.arange(4), [100, 100, 100, 20])
    resolved = resolve_auto(SelectionConfig(keep=keep, class_balanced=False), labels, 4)
    assert resolved.selection.mode == mode and resolved.selection.class_balanced
    assert "5.0x" in resolved.reason  # the class imbalance it saw
    assert resolved.to_dict("auto")["requested"] == "auto"


def test_auto_passes_an_explicit_mode_through() -> None:
    explicit = SelectionConfig(keep=0.1, mode="hardest", class_balanced=False)
    # Passed through, with its allocation resolved for the report (a requested mode keeps class proportions).
    assert resolve_auto(explicit, np.zeros(10, np.int64), 1).selection == replace(explicit, allocation="proportional")


def test_default_prune_job_records_its_policy_and_gain(digits: ImageDataset) -> None:
    config = PruneConfig(
        selection=SelectionConfig(keep=0.1),
        proxy=ProxyConfig(width=8, epochs=3),
        evaluation=EvalConfig(seeds=2, epochs=3, width=8, full_data=False),
    )
    report = run_prune(digits, config).report
    policy = report["selection"]["policy"]
    assert policy["requested"] == "auto" and policy["mode"] == "prototypes" and policy["reason"]
    gain = report["gain_over_random"]
    subset, random = report["evaluation"]["subset"]["per_seed"], report["evaluation"]["random"]["per_seed"]
    assert gain["per_seed"] == pytest.approx([s - r for s, r in zip(subset, random, strict=True)])
    assert gain["mean"] == pytest.approx(np.mean(gain["per_seed"]))
    assert gain["verdict"]["seeds"] == 2 and gain["verdict"]["mean"] == pytest.approx(gain["mean"])
    assert gain["verdict"]["verdict"] in {"better", "worse", "within noise"}
    assert report["selection"]["class_kl"] < 1e-3


def test_a_prune_job_needs_only_a_dataset_and_keep() -> None:
    spec = PruneJobCreate.model_validate({"kind": "prune", "dataset_id": OBJECT_ID, "keep_fraction": 0.1})
    assert spec.method.value == PruneConfig.method and spec.mode == "auto"


def test_pruned_start_defaults_to_the_papers_window_and_other_modes_need_none() -> None:
    base = {"kind": "prune_then_distill", "dataset_id": OBJECT_ID, "method": "dm"}
    assert PruneThenDistillJobCreate.model_validate(base).window == (0.7, 0.8)
    assert PruneThenDistillJobCreate.model_validate({**base, "mode": "hardest"}).window is None
    with pytest.raises(ValueError, match="window"):
        PruneThenDistillJobCreate.model_validate({**base, "mode": "hardest", "window": [0.1, 0.2]})


def test_pruned_start_window_too_narrow_for_ipc_extends_below_it() -> None:
    labels = np.repeat(np.arange(2), 20)
    importance = np.tile(np.arange(20.0), 2)
    picked = pick_pruned(importance, labels, 2, 5, PrunedStartConfig(), seed=0)
    # 10% of a 20-sample class holds 2; the 5 kept end at the 80th percentile (ranks 11..15).
    assert sorted(importance[picked[:5]].tolist()) == [11.0, 12.0, 13.0, 14.0, 15.0]
    assert len(picked) == 10


def _prune(digits: ImageDataset, method: str, keep: float = 0.1, **selection: object) -> dict:
    config = PruneConfig(method=method, selection=SelectionConfig(keep=keep, **selection),
                         proxy=ProxyConfig(width=8, epochs=3), evaluation=None)
    return run_prune(digits, config)


def test_a_named_score_decides_and_auto_says_when_no_score_did(digits: ImageDataset) -> None:
    el2n, forgetting, chosen = (_prune(digits, m) for m in ("el2n", "forgetting", "auto"))
    # Two named scores at keep 10%: each ranks by itself, so the kept sets differ (they coincided under
    # the prototypes policy that auto picked for any score before).
    assert set(el2n.indices.tolist()) != set(forgetting.indices.tolist())
    for result, score in ((el2n, "el2n"), (forgetting, "forgetting")):
        policy = result.report["selection"]["policy"]
        measured = named_policy(policy_for(score, 0.1)[0], SelectionConfig(keep=0.1), 0.1)
        assert (policy["mode"], policy["window"]) == (measured.mode, measured.window)
        assert policy["score"] == score and policy["score_used"] is True
        assert score in policy["reason"] and "bench.prune --parts policies" in policy["reason"]
        assert result.report["score"]["name"] == score and result.report["score"]["used"] is True
    policy = chosen.report["selection"]["policy"]
    assert policy["mode"] == "prototypes" and policy["score_used"] is False and "Condense chose" in policy["reason"]
    assert chosen.report["score"]["requested"] == "auto" and chosen.report["score"]["used"] is False


def test_a_policy_that_ignores_the_score_is_used_only_by_name_and_says_so(digits: ImageDataset) -> None:
    result = _prune(digits, "forgetting", mode="prototypes")
    policy = result.report["selection"]["policy"]
    assert policy["score_used"] is False and "not used" in policy["reason"]
    assert describe_selection(policy).endswith("score used: no")
    assert describe_selection(_prune(digits, "el2n").report["selection"]["policy"]).startswith("el2n, ")


@pytest.mark.parametrize(
    ("label", "mode", "window", "cutoff"),
    [("ccs 30%", "ccs", None, 0.3), ("drop 10%", "window", (0.0, 0.9), None), ("median", "window", (0.0, 0.55), None),
     ("easiest", "easiest", None, None), ("hardest", "hardest", None, None)],
)
def test_each_policy_a_named_score_can_resolve_to(label: str, mode: str, window: tuple | None, cutoff: float | None) -> None:
    selection = named_policy(label, SelectionConfig(keep=0.1, window=(0.2, 0.4), class_balanced=False), 0.1)
    assert selection.mode == mode and selection.class_balanced and selection.keep == 0.1
    assert selection.window == (pytest.approx(window) if window else None)
    if cutoff is not None:
        assert selection.ccs_hard_cutoff == cutoff


def test_the_median_block_is_centred_on_the_median_of_each_class() -> None:
    importance = np.arange(100, dtype=np.float64)
    picked = select_indices(importance, np.zeros(100, np.int64), 1, named_policy("median", SelectionConfig(keep=0.1), 0.1))
    assert sorted(picked.tolist()) == list(range(45, 55))


def test_every_score_a_job_can_name_has_a_measured_policy_and_one_above_it() -> None:
    for score in score_names():
        if score == "random":
            continue
        label, up_to = policy_for(score, 0.01)
        assert up_to is not None and named_policy(label, SelectionConfig(keep=0.01), 0.01)
    assert policy_for("el2n", 0.9) == (ABOVE_MEASURED, None)


def test_score_parameters_need_a_named_score() -> None:
    problems = check_method_params("auto", {"window": 3}, 10)
    assert [p.field for p in problems] == ["score_params.window"] and "name the score" in problems[0].message
    assert check_method_params("tdds", {"window": 3}, 10) == []
