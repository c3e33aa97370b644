"""run_distill end to end on digits: artifacts, expert reuse, prune-then-distill init, DATM init, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn.utils import vector_to_parameters

from engine.data.dataset import ImageDataset
from engine.distill import (
    LocalExpertStore,
    SyntheticSet,
    distribution,
    get_method,
    method_names,
)
from engine.distill.experts import Trajectories
from engine.distill.experts_config import ExpertConfig
from engine.distill.families import options_with
from engine.distill.memory import measure_unroll
from engine.distill.trajectory_config import TrajectoryConfig
from engine.evaluate import EvalSpec
from engine.evaluate.synthetic import evaluate_synthetic
from engine.evaluate.verdict import describe
from engine.models import create_model
from engine.pipeline.distill import run_distill
from engine.pipeline.distill_config import DistillConfig, DistillEvalConfig, InitConfig
from engine.pipeline.prune_config import ProxyConfig
from engine.pipeline.scoring import compute_scores
from engine.progress import CancelledError, Tracker
from engine.select.config import SelectionConfig
from engine.train import predict

TINY_EXPERTS = ExpertConfig(num_experts=2, epochs=4, batch_size=128)
TINY_TM = TrajectoryConfig(syn_steps=4, expert_epochs=2, max_start_epoch=1, max_start_epoch_final=2, widen_iterations=4)
TINY_EVAL = DistillEvalConfig(seeds=2, epochs=30, width=16, full_epochs=2)
TINY_PROXY = ProxyConfig(width=16, epochs=3)


def _config(method: str, **kwargs) -> DistillConfig:
    base = {"method": method, "ipc": 2, "iterations": 4, "width": 16,
            "options": options_with(experts=TINY_EXPERTS, trajectory=TINY_TM), "evaluation": None, "init": InitConfig(proxy=TINY_PROXY), "device": "cpu", "checkpoint_every": 2}
    return DistillConfig(**(base | kwargs))


def test_registry_lists_the_six_methods() -> None:
    assert method_names() == ["dc", "dsa", "dm", "mtt", "datm", "pad"]
    assert get_method("pad").difficulty_schedule and get_method("datm").soft_labels and not get_method("mtt").soft_labels
    assert get_method("pad").default_fiem_ratio(1) == 0.0 and get_method("pad").default_fiem_ratio(10) == 0.25
    with pytest.raises(ValueError, match="choose one of"):
        get_method("nope")


def test_run_distill_writes_artifacts_that_reload_to_the_same_accuracy(digits: ImageDataset, tmp_path: Path) -> None:
    result = run_distill(digits, _config("dm", evaluation=TINY_EVAL, iterations=6), workdir=tmp_path / "work")
    report = result.report
    assert report["kind"] == "distill" and report["seed"] == 0 and report["versions"]["torch"]
    assert list(report["resolved"]["dsa_groups"]) == ["color", "crop", "cutout", "scale", "rotate"]  # no flip on digits
    assert len(result.loss_curve) == 6 and report["timings"]["seconds_per_iteration"] > 0
    ev = report["evaluation"]
    assert ev["synthetic"]["train_size"] == ev["random"]["train_size"] == 20 and len(ev["synthetic"]["per_seed"]) == 2
    assert ev["full"]["train_size"] == len(digits.y_train)
    # Hard labels already: the gain and DD-Ranking's figures compare the set as it was evaluated.
    assert "hard_labels" not in ev
    ior = np.subtract(ev["synthetic"]["per_seed"], ev["random"]["per_seed"])
    assert report["gain_over_random"]["per_seed"] == pytest.approx(ior)
    ranking = report["dd_ranking"]
    assert ranking["improvement_over_random"]["per_seed"] == pytest.approx(ior)
    hlr = ev["full"]["mean"] - np.asarray(ev["synthetic"]["per_seed"])
    assert ranking["hard_label_recovery"]["per_seed"] == pytest.approx(hlr)
    lrs = (np.exp(0.5 * ior - 0.5 * hlr) - np.exp(-1)) / (np.exp(1) - np.exp(-1))
    assert ranking["label_robust_score"]["mean"] == pytest.approx(lrs.mean()) and 0 <= lrs.min() <= lrs.max() <= 1
    written = {p.name for p in result.write(tmp_path / "out")}
    assert written == {"synthetic.safetensors", "synthetic.npz", "synthetic_png.zip", "preview.png", "loss_curve.json",
                       "loss_curve.png", "report.json"}
    curve = json.loads((tmp_path / "out" / "loss_curve.json").read_text())
    assert curve["loss"] == result.loss_curve and curve["iteration"] == list(range(1, 7))
    assert json.loads((tmp_path / "out" / "report.json").read_text())["evaluation"] == ev
    with Image.open(tmp_path / "out" / "preview.png") as png:
        assert png.height > png.width  # one row per class, ipc columns
    spec = EvalSpec(model="convnet", width=16, epochs=30, batch_size=256, lr=0.01, seeds=2, device="cpu",
                    dsa_strategy="color_crop_cutout_scale_rotate")
    for name in ("synthetic.safetensors", "synthetic.npz"):
        back = SyntheticSet.load(tmp_path / "out" / name)
        again = evaluate_synthetic(digits, back, spec, base_seed=1000)
        assert again.per_seed == ev["synthetic"]["per_seed"]


def test_experts_are_stored_and_reused(digits: ImageDataset, tmp_path: Path) -> None:
    store = LocalExpertStore(tmp_path / "experts")
    first = run_distill(digits, _config("mtt"), expert_store=store)
    assert first.report["experts"]["trained"] and not first.report["experts"]["reused"]
    assert len(list((tmp_path / "experts").glob("*.safetensors"))) == 1
    second = run_distill(digits, _config("mtt", seed=0), expert_store=store)
    assert second.report["experts"]["reused"] and second.report["experts"]["key"] == first.report["experts"]["key"]
    assert second.report["timings"]["experts_seconds"] < first.report["timings"]["experts_seconds"]
    torch.testing.assert_close(second.synthetic.images, first.synthetic.images)  # same experts, same result
    # A different training config is a different key: trained again, never confused with the first.
    other = run_distill(digits, _config("mtt", options=options_with(experts=ExpertConfig(num_experts=2, epochs=5, batch_size=128), trajectory=TINY_TM)), expert_store=store)
    assert other.report["experts"]["trained"] and other.report["experts"]["key"] != first.report["experts"]["key"]
    # The data subset is part of the key (a subset keeps the dataset's content hash).
    subset = digits.with_train_subset(np.arange(0, len(digits.y_train), 2))
    assert run_distill(subset, _config("mtt"), expert_store=store).report["experts"]["trained"]


def test_prune_then_distill_starts_from_the_per_class_window(digits: ImageDataset) -> None:
    init = InitConfig(mode="pruned", prune_method="el2n", selection=SelectionConfig(mode="window", window=(0.7, 0.8)), proxy=TINY_PROXY)
    result = run_distill(digits, _config("mtt", init=init, iterations=1))
    assert result.report["kind"] == "prune_then_distill"
    indices = np.array(result.report["init"]["indices"])
    el2n = compute_scores(digits, ["el2n"], TINY_PROXY, seed=0, device="cpu").scores["el2n"]
    for c in range(10):
        picked = indices[c * 2:(c + 1) * 2]
        members = np.flatnonzero(digits.y_train == c)
        assert np.all(digits.y_train[picked] == c)
        rank = np.argsort(np.argsort(el2n[members], kind="stable"), kind="stable") / len(members)
        where = rank[np.searchsorted(members, picked)]
        assert np.all((where >= 0.69) & (where < 0.81)), where  # inside the class's 70-80th percentile


def test_datm_initialises_soft_labels_from_expert_logits_on_correct_samples(digits: ImageDataset, tmp_path: Path) -> None:
    # Unset, DATM's T+ is PAD Table 10's for the IPC, capped at the last epoch with M epochs ahead of it.
    config = _config("datm", iterations=1, options=options_with(
        experts=TINY_EXPERTS, trajectory=TrajectoryConfig(syn_steps=4, expert_epochs=2, max_start_epoch=1)))
    result = run_distill(digits, config, expert_store=LocalExpertStore(tmp_path))
    # The label model (first expert, last epoch) is reported with its accuracy, recomputed here in a module.
    label_model = result.report["label_model"]
    assert (label_model["expert"], label_model["epoch"]) == (0, config.options["experts"].epochs)
    (stored,) = tmp_path.glob("experts-*.safetensors")
    model = create_model("convnet", channels=1, num_classes=10, image_size=8, width=config.width)
    experts = Trajectories.load(stored, stored.stem, config.options["experts"].num_experts, config.options["experts"].epochs)
    vector_to_parameters(experts.params[0, -1], model.parameters())
    logits, _ = predict(model, digits.test_tensors()[0], torch.device("cpu"), amp=False)
    expected = float((logits.argmax(1) == digits.test_tensors()[1]).float().mean())
    assert label_model["test_accuracy"] == pytest.approx(expected, abs=1 / len(digits.y_test))
    assert 0.0 < label_model["train_accuracy"] <= 1.0
    last = config.options["experts"].epochs - config.options["trajectory"].expert_epochs
    # IPC 2 takes Table 10's T+ of 20, capped at the last expert epoch with M epochs ahead.
    assert result.report["resolved"]["max_start_epoch_final"] == last
    assert (result.report["resolved"]["min_start_epoch"], result.report["resolved"]["max_start_epoch"]) == (0, 1)
    assert result.report["resolved"]["widen_iterations"] == 1
    synthetic = result.synthetic
    assert synthetic.soft and synthetic.labels.shape == (20, 10)
    assert result.report["resolved"]["soft_labels"] is True and result.report["resolved"]["zca"] is False  # grayscale
    assert torch.equal(synthetic.hard_labels(), torch.arange(10).repeat_interleave(2))
    # Soft labels: DD-Ranking's figures come from the same images trained on their hard labels.
    evaluated = run_distill(digits, replace(config, evaluation=replace(TINY_EVAL, full_data=False)),
                            expert_store=LocalExpertStore(tmp_path)).report
    ev = evaluated["evaluation"]
    assert ev["hard_labels"]["per_seed"] != ev["synthetic"]["per_seed"]
    ior = np.subtract(ev["hard_labels"]["per_seed"], ev["random"]["per_seed"])
    assert evaluated["dd_ranking"]["improvement_over_random"]["per_seed"] == pytest.approx(ior)
    assert evaluated["gain_over_random"]["per_seed"] == pytest.approx(ior)
    assert evaluated["dd_ranking"]["hard_label_recovery"] is None  # no full-data run to recover
    pad = run_distill(digits, _config("pad", iterations=1, init=InitConfig(proxy=TINY_PROXY)))
    assert pad.report["resolved"]["schedule"]["initial_ratio"] == 0.75 and pad.report["resolved"]["fiem_ratio"] == 0.25


@pytest.mark.parametrize(("ipc", "drops"), [(2, "hardest"), (51, "easiest")])
def test_dc_and_dm_fiex_leaves_one_end_of_each_class_out_of_matching(
    digits: ImageDataset, ipc: int, drops: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """003 App. A.1: hard samples out at small IPC, easy ones at large; each class loses the same share."""
    seen = []
    real_matcher = distribution.DistributionMatcher  # what the distribution family's build makes
    monkeypatch.setattr(distribution, "DistributionMatcher", lambda real, *a: seen.append(real) or real_matcher(real, *a))
    report = run_distill(digits, _config("dm", ipc=ipc, iterations=1, fiex_ratio=0.2)).report
    assert report["resolved"]["fiex_drops"] == drops and report["fiex"]["drops"] == drops

    # The same EL2N the job scored (its proxy and seed); each class's top or bottom fifth is what goes.
    el2n = compute_scores(digits, ["el2n"], TINY_PROXY, seed=0).scores["el2n"]
    expected = []
    for c in range(10):
        members = np.flatnonzero(digits.y_train == c)
        order = members[np.argsort(el2n[members], kind="stable")]
        cut = int(0.2 * len(order))
        expected.append(order[: len(order) - cut] if drops == "hardest" else order[cut:])
    kept = np.sort(np.concatenate(expected))
    x, _ = digits.train_tensors()
    assert torch.equal(seen[0].x.cpu(), x[kept])
    assert report["fiex"]["kept"] == len(kept) and report["fiex"]["removed"] == len(digits.y_train) - len(kept)

    plain = run_distill(digits, _config("dm", ipc=ipc, iterations=1))
    assert plain.report["resolved"]["fiex_drops"] is None and "fiex" not in plain.report


def test_fiex_ratio_is_refused_for_trajectory_methods(digits: ImageDataset) -> None:
    with pytest.raises(ValueError, match="schedule"):
        run_distill(digits, _config("mtt", fiex_ratio=0.2))


def test_run_distill_cancels_and_resumes(digits: ImageDataset, tmp_path: Path) -> None:
    events = []
    tracker = Tracker(on_progress=events.append, should_cancel=lambda: any(e.stage == "distill" and e.message.startswith("iteration 2/") for e in events))
    with pytest.raises(CancelledError):
        run_distill(digits, _config("dm"), tracker, workdir=tmp_path)
    resumed = run_distill(digits, _config("dm"), workdir=tmp_path)
    straight = run_distill(digits, _config("dm"))
    assert resumed.report["distill"]["resumed_from_iteration"] == 2
    assert torch.equal(resumed.synthetic.images, straight.synthetic.images)


def test_unrolled_memory_stays_flat_with_checkpointing() -> None:
    """Measured on this 2-core CPU (ConvNet w32, 16px, IPC 10, peak RSS above a one-step warm-up):
    checkpointed +4.5 MB at 2 steps and +10.5 MB at 12; the full graph +42 MB and +229 MB (19 MB per step)."""
    ckpt2, ckpt12, graph2, graph12 = measure_unroll([2, 12], ("checkpoint", "graph"), width=32, image_size=16, iterations=1)
    seen = f"checkpoint {ckpt2.peak_mb:.1f} -> {ckpt12.peak_mb:.1f} MB, graph {graph2.peak_mb:.1f} -> {graph12.peak_mb:.1f} MB"
    # Bounds leave room for allocator noise in the peak RSS of a busy machine.
    assert ckpt12.peak_mb - ckpt2.peak_mb < 40, seen
    assert graph12.peak_mb - graph2.peak_mb > 100, seen
    assert ckpt12.peak_mb < graph12.peak_mb / 3, seen


def test_cli_distill_writes_the_documented_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "cli", "distill", "builtin:digits", "--method", "pad", "--ipc", "2", "--iterations", "3",
           "--init", "pruned", "--window", "0.7:0.8", "--proxy-epochs", "2", "--width", "16", "--trajectory-syn-steps", "3",
           "--experts-count", "1", "--experts-epochs", "4", "--trajectory-max-start-epoch", "1", "--eval-seeds", "1",
           "--eval-epochs", "5", "--eval-width", "16", "--no-full", "--schedule-initial-ratio", "0.5",
           "--schedule-removal-epoch", "3", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "120"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("synthetic.safetensors", "synthetic.npz", "synthetic_png.zip", "preview.png", "loss_curve.json",
                 "loss_curve.png", "report.json"):
        assert (out / name).is_file()
    report = json.loads((out / "report.json").read_text())
    assert report["kind"] == "prune_then_distill" and report["config"]["init"]["selection"]["window"] == [0.7, 0.8]
    assert report["experts"]["trained"] and "Test accuracy" in proc.stdout
    # The options given, the rest PAD's for a 4-epoch expert run (all data in by its first fifth).
    assert report["resolved"]["schedule"] == {"initial_ratio": 0.5, "addition_end_epoch": 1, "removal_epoch": 3,
                                              "removal_fraction": 0.1}
    ior = report["dd_ranking"]["improvement_over_random"]["mean"]
    assert f"DD-Ranking (hard labels): improvement over random real {100 * ior:+.2f}" in proc.stdout
    verdict = report["gain_over_random"]["verdict"]
    assert verdict["verdict"] == "not enough seeds to tell"  # one evaluation seed
    assert f"Synthetic set (hard labels): {describe(verdict, what='random real images')}\n" in proc.stdout
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "120"})
    assert again.returncode == 0 and json.loads((out / "report.json").read_text())["experts"]["reused"]


@pytest.mark.parametrize("args", [
    ["--ipc", "1000"], ["--window", "0.9"], ["--method", "nope"], ["--fiem-ratio", "1.5"], ["--fiex-ratio", "1"],
    ["--method", "dm", "--schedule-initial-ratio", "0.5"], ["--method", "pad", "--schedule-initial-ratio", "0"],
])
def test_cli_distill_rejects_bad_input_with_exit_2(tmp_path: Path, args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "cli", "distill", "builtin:digits", "--out", str(tmp_path / "o"), *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "error" in (proc.stdout + proc.stderr).lower()


def test_cli_distill_reports_a_bad_dataset_with_a_hint(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((4, 8, 8), np.uint8), y=np.zeros(3, np.int64))
    proc = subprocess.run([sys.executable, "-m", "cli", "distill", str(bad), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "error" in proc.stdout


def test_cli_distill_help_documents_every_option() -> None:
    proc = subprocess.run([sys.executable, "-m", "cli", "distill", "--help"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "200"})
    for option in ("--method", "--ipc", "--init", "--prune-method", "--window", "--iterations", "--out", "--zca",
                   "--soft-labels", "--fiem-ratio", "--fiex-ratio", "--schedule-initial-ratio", "--trajectory-syn-steps", "--experts-dir", "--eval-seeds", "--cross-arch"):
        assert option in proc.stdout
    for name in method_names():
        assert name in proc.stdout
