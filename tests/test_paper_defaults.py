"""Each default that follows a seed paper, pinned: changing one is a decision, not an accident."""

from __future__ import annotations

import pytest
import torch

from engine.data.dataset import ImageDataset
from engine.distill.experts_config import ExpertConfig
from engine.distill.families import options_with
from engine.distill.registry import get_method
from engine.distill.schedule import DifficultySchedule
from engine.distill.trajectory_config import MTT_MAX_START_EPOCH, TrajectoryConfig
from engine.pipeline.distill import run_distill, start_range
from engine.pipeline.distill_config import DistillConfig, PrunedStartConfig
from engine.pipeline.prune import run_prune
from engine.pipeline.prune_config import ProxyConfig, PruneConfig
from engine.scores import get_score
from engine.select.auto import resolve_auto
from engine.select.config import SelectionConfig

CPU = torch.device("cpu")
DEFAULT_EPOCHS = ProxyConfig().epochs


def test_el2n_scores_an_early_epoch_averaged_over_several_runs() -> None:
    # Paul et al.: epoch 20 of 200, averaged over runs; 001 Alg. 1 averages over its experts.
    spec = get_score("el2n")
    assert spec.params["epoch_fraction"].default == 0.1 and spec.params["seeds"].default == 4
    assert spec.resolved_params({}, DEFAULT_EPOCHS) == {"epoch": 1, "epoch_fraction": 0.1, "seeds": 4}
    assert spec.resolved_params({}, 200)["epoch"] == 20
    assert spec.resolved_params({"epoch_fraction": 0.5}, 10)["epoch"] == 5
    assert spec.resolved_params({"epoch": 7, "epoch_fraction": 0.5}, 10)["epoch"] == 7  # an explicit epoch wins
    assert spec.accumulator(4, 2, 200, CPU).eval_epochs == frozenset({20})


@pytest.mark.parametrize("name", ["el2n", "grand"])
def test_el2n_family_never_scores_the_last_epoch_by_default(name: str) -> None:
    assert get_score(name).resolved_params({}, DEFAULT_EPOCHS)["epoch"] < DEFAULT_EPOCHS


def test_tdds_slides_several_windows_over_the_default_proxy() -> None:
    # 002 Sec. 4.3: many windows enter the EMA; beta 0.9 is Sec. 5.3's best.
    resolved = get_score("tdds").resolved_params({}, DEFAULT_EPOCHS)
    assert resolved == {"window": 5, "beta": 0.9, "start_epoch": 1, "end_epoch": DEFAULT_EPOCHS}
    acc = get_score("tdds").accumulator(4, 2, DEFAULT_EPOCHS, CPU)
    assert (acc.window, acc.num_windows) == (5, 6)
    assert get_score("tdds").resolved_params({"window": 10, "start_epoch": 3}, 20)["window"] == 10


def test_dyn_unc_averages_several_windows_over_the_default_proxy() -> None:
    assert get_score("dyn_unc").resolved_params({}, DEFAULT_EPOCHS) == {"window": 5}
    assert get_score("dyn_unc").accumulator(4, 2, DEFAULT_EPOCHS, CPU).window == 5


def test_aum_keeps_pleiss_orientation_and_easiest_keeps_002s_end(digits: ImageDataset) -> None:
    # Pleiss et al.: low AUM = hard or mislabelled; 002 prunes keeping large AUM, which mode 'easiest' does.
    assert get_score("aum").higher_is_important is False
    config = PruneConfig(method="aum", selection=SelectionConfig(keep=0.2, mode="easiest"),
                         proxy=ProxyConfig(width=8, epochs=3), evaluation=None)
    result = run_prune(digits, config)
    assert result.report["score"]["higher_is_important"] is False
    kept = set(result.indices.tolist())
    assert result.scores[list(kept)].mean() > result.scores[[i for i in range(len(result.scores)) if i not in kept]].mean()


def test_tdds_selects_over_all_samples_unless_told_and_auto_always_balances(digits: ImageDataset) -> None:
    # 002 Sec. 4.3 keeps the global top-M; the other scores' default stays within each class.
    assert get_score("tdds").selects_globally and not get_score("el2n").selects_globally
    assert SelectionConfig().class_balanced is None
    proxy = ProxyConfig(width=8, epochs=6)
    for method, balanced, expected in (("tdds", None, False), ("tdds", True, True), ("el2n", None, True)):
        config = PruneConfig(method=method, selection=SelectionConfig(keep=0.2, mode="hardest", class_balanced=balanced),
                             proxy=proxy, evaluation=None)
        report = run_prune(digits, config).report
        assert report["selection"]["policy"]["class_balanced"] is expected, (method, balanced)
    labels = digits.y_train
    assert resolve_auto(SelectionConfig(keep=0.2), labels, 10, selects_globally=True).selection.class_balanced


def test_prune_then_distill_starts_from_the_70th_to_80th_el2n_percentile() -> None:
    # 001 Sec. 4.4 and Fig. 1.
    assert (PrunedStartConfig().mode, PrunedStartConfig().window) == ("window", (0.7, 0.8))


def test_a_prune_job_defaults_to_auto_and_reports_the_resolved_score_parameters(digits: ImageDataset) -> None:
    config = PruneConfig(selection=SelectionConfig(keep=0.2), proxy=ProxyConfig(width=8, epochs=10), evaluation=None)
    assert (config.method, config.selection.mode) == ("auto", "auto")
    report = run_prune(digits, config).report
    # auto records EL2N (the score its proxy run ranks by) with 001's early-epoch defaults.
    assert report["score"]["name"] == "el2n" and report["score"]["requested"] == "auto"
    assert report["score"]["params"] == {"epoch": 1, "epoch_fraction": 0.1, "seeds": 4}
    assert report["score"]["higher_is_important"] is True
    assert report["selection"]["policy"]["mode"] == "prototypes"


@pytest.mark.parametrize(("ipc", "alpha"), [(1, 0.0), (10, 0.25), (50, 0.25), (100, 0.5), (500, 0.5), (1000, 0.75)])
def test_pad_fiem_alpha_grows_with_ipc(ipc: int, alpha: float) -> None:
    # PAD Table 10, CIFAR-10 rows.
    assert get_method("pad").default_fiem_ratio(ipc) == alpha
    assert get_method("datm").default_fiem_ratio(ipc) == 0.0


@pytest.mark.parametrize(
    ("ipc", "expected"),
    # PAD Table 10 (CIFAR-10, 100-epoch experts): IPC 1 (0, 4, 4), 10 (0, 10, 20), 50 (0, 20, 40), 500+ (40, 60, 60).
    [(1, (0, 4, 4)), (10, (0, 10, 20)), (50, (0, 20, 40)), (1000, (40, 60, 60))],
)
def test_datm_and_pad_start_ranges_follow_the_ipc(ipc: int, expected: tuple[int, int, int]) -> None:
    for method in ("datm", "pad"):
        config = DistillConfig(method=method, ipc=ipc, iterations=50, options=options_with(experts=ExpertConfig(epochs=100)))
        low, high, final, widen = start_range(get_method(method), config)
        assert (low, high, final, widen) == (*expected, 50)
    # Shorter expert runs cap the range at the last start with M epochs ahead (18 of the default 20); the
    # IPC-1 range stays small, starts 0..4, not up to epoch 18.
    assert start_range(get_method("pad"), DistillConfig(method="pad", ipc=1))[:3] == (0, 4, 4)
    assert start_range(get_method("datm"), DistillConfig(method="datm", ipc=10))[:3] == (0, 10, 18)
    assert start_range(get_method("datm"), DistillConfig(method="datm", ipc=50))[:3] == (0, 18, 18)


def test_a_start_range_that_is_set_wins_and_mtt_keeps_its_fixed_range() -> None:
    config = DistillConfig(method="datm", ipc=1, options=options_with(
        experts=ExpertConfig(epochs=100),
        trajectory=TrajectoryConfig(min_start_epoch=2, max_start_epoch=5, max_start_epoch_final=30)))
    assert start_range(get_method("datm"), config)[:3] == (2, 5, 30)
    assert start_range(get_method("mtt"), DistillConfig(method="mtt", ipc=50))[:3] == (0, MTT_MAX_START_EPOCH, None)


def test_datm_and_pad_whiten_colour_images_by_default_and_the_report_says_so(digits: ImageDataset) -> None:
    # 003 App. B: ZCA in every experiment (PAD, and DATM whose settings it keeps), all on colour images; MTT and
    # the others unwhitened, grayscale too (measured worse on digits, see MethodSpec).
    assert [m for m in ("dc", "dsa", "dm", "mtt", "datm", "pad") if get_method(m).zca] == ["datm", "pad"]
    assert DistillConfig.zca is None
    assert get_method("pad").default_zca(3) and not get_method("pad").default_zca(1) and not get_method("mtt").default_zca(3)
    for method, zca, expected in (("dm", None, False), ("dm", True, True)):
        config = DistillConfig(method=method, ipc=1, iterations=1, width=8, evaluation=None, zca=zca, device="cpu")
        assert run_distill(digits, config).report["resolved"]["zca"] is expected


def test_pad_fiex_schedule_follows_table_10() -> None:
    # IR 0.75, AEE 20 of 100, the easiest 10% removed (from epoch 60 in PAD's public script).
    assert DifficultySchedule.for_experts(100) == DifficultySchedule(0.75, 20, 60, 0.1)
    assert DifficultySchedule.for_experts(20) == DifficultySchedule(0.75, 4, 12, 0.1)
