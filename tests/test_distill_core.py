"""Distillation building blocks on tiny data: augmentation, masks, scheduler, losses, files, loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine.data.dataset import ImageDataset
from engine.distill.augment import DSA_GROUPS, DSAugment, apply_dsa, sample_dsa
from engine.distill.base import RealData
from engine.distill.distribution import DistributionMatcher, layer_embeddings
from engine.distill.distribution_config import DistributionConfig
from engine.distill.experts import Trajectories, obtain_experts
from engine.distill.experts_config import ExpertConfig
from engine.distill.fiem import per_parameter_masks, shallow_mask
from engine.distill.gradient import GradientMatcher
from engine.distill.gradient_config import GradientConfig
from engine.distill.init import pick_pruned, pick_real
from engine.distill.loop import iteration_generator, run_loop
from engine.distill.schedule import DifficultySchedule, easy_to_hard
from engine.distill.synthetic import SyntheticSet
from engine.distill.trajectory import FunctionalStudent, TrajectoryMatcher
from engine.distill.trajectory_config import TrajectoryConfig
from engine.distill.zca import ZCAWhitening
from engine.models import create_model
from engine.progress import CancelledError, Tracker
from engine.select.config import SelectionConfig

GROUPS = ("color", "crop", "cutout", "scale", "rotate")


def _new_model(width: int = 16):
    return lambda: create_model("convnet", channels=1, num_classes=10, image_size=8, width=width)


def _real(digits: ImageDataset) -> RealData:
    x, y = digits.train_tensors()
    return RealData(x, y, digits.num_classes)


def _synthetic(digits: ImageDataset, ipc: int, *, lr: float | None = None, soft: bool = False, seed: int = 0) -> SyntheticSet:
    x, _ = digits.train_tensors()
    idx = pick_real(digits.y_train, digits.num_classes, ipc, seed)
    labels = torch.arange(10).repeat_interleave(ipc)
    if soft:
        labels = torch.nn.functional.one_hot(labels, 10).float() * 3.0
    return SyntheticSet(x[idx].clone(), labels, 10, digits.mean, digits.std, lr=torch.tensor(lr) if lr is not None else None)


@pytest.fixture(scope="module")
def experts(digits: ImageDataset) -> Trajectories:
    trajectories, reused = obtain_experts(None, "unused", _real(digits), _new_model(), ExpertConfig(num_experts=2, epochs=5, batch_size=128),
                                          seed=0, augment_strategy="color_crop")
    assert not reused
    return trajectories


# --- DSA -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("group", DSA_GROUPS)
def test_dsa_siamese_draw_transforms_real_and_synthetic_identically(group: str) -> None:
    gen = torch.Generator().manual_seed(3)
    image = torch.rand(1, 1, 12, 12)
    real = torch.cat([torch.rand(5, 1, 12, 12), image, torch.rand(7, 1, 12, 12)])
    syn = torch.cat([image, torch.rand(2, 1, 12, 12)]).requires_grad_(True)
    draw = sample_dsa((group,), 1, gen)
    zeros = lambda n: torch.zeros(n, dtype=torch.long)  # noqa: E731
    out_real = apply_dsa(real, draw.select(zeros(len(real))))
    out_syn = apply_dsa(syn, draw.select(zeros(len(syn))))
    torch.testing.assert_close(out_real[5], out_syn[0])
    out_syn.sum().backward()  # differentiable in the images
    assert syn.grad is not None and torch.isfinite(syn.grad).all()


def test_dsa_changes_images_and_per_sample_draws_differ() -> None:
    x = torch.rand(64, 1, 12, 12)
    for group in DSA_GROUPS:
        out = apply_dsa(x, sample_dsa((group,), 64, torch.Generator().manual_seed(1), siamese=False))
        assert out.shape == x.shape and not torch.allclose(out, x), group
    siamese = sample_dsa(("rotate",), 8, torch.Generator().manual_seed(1))
    per_sample = sample_dsa(("rotate",), 8, torch.Generator().manual_seed(1), siamese=False)
    assert siamese.values["angle"].unique().numel() == 1 and per_sample.values["angle"].unique().numel() == 8
    aug = DSAugment("color_crop_cutout_flip_scale_rotate")
    assert aug(x.permute(0, 1, 3, 2), torch.Generator().manual_seed(0)).shape == x.shape  # non-contiguous input


# --- FIEM ------------------------------------------------------------------------------------------


def test_fiem_masks_exactly_the_shallowest_share_of_parameters() -> None:
    model = _new_model()()
    params = list(model.parameters())
    total = sum(p.numel() for p in params)
    flat = shallow_mask([p.shape for p in params], 0.25)
    assert flat.shape == (total,) and int((flat == 0).sum()) == int(total * 0.25)
    assert torch.all(flat[: int(total * 0.25)] == 0) and torch.all(flat[int(total * 0.25):] == 1)
    masks = per_parameter_masks(model, 0.25)
    names = [n for n, _ in model.named_parameters()]
    assert names[0].startswith("features.0") and torch.all(masks[0] == 0)  # first conv: out
    assert names[-1].startswith("head") and torch.all(masks[-1] == 1)  # classifier: in
    assert torch.all(per_parameter_masks(model, 0.0)[0] == 1)
    with pytest.raises(ValueError):
        shallow_mask([p.shape for p in params], 1.0)


def test_fiem_leaves_masked_layers_out_of_gradient_and_distribution_matching(digits: ImageDataset) -> None:
    model = _new_model()()
    first_conv = next(model.parameters())
    masked = GradientMatcher(_real(digits), _new_model(), GradientConfig(fiem_ratio=0.25))._matched(model)
    assert all(p is not first_conv for p, _ in masked)
    assert any(p is first_conv for p, _ in GradientMatcher(_real(digits), _new_model(), GradientConfig())._matched(model))
    x = torch.randn(4, 1, 8, 8)
    full = layer_embeddings(model, x)
    dm = DistributionMatcher(_real(digits), _new_model(), DistributionConfig(fiem_ratio=0.5))
    assert dm._embed(model, x).shape[1] == full.shape[1] - int(full.shape[1] * 0.5)
    torch.testing.assert_close(dm._embed(model, x), full[:, int(full.shape[1] * 0.5):])


# --- PAD scheduler ---------------------------------------------------------------------------------


def test_pad_scheduler_adds_harder_samples_then_drops_the_easiest() -> None:
    el2n = np.array([0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6, 0.0])
    order = easy_to_hard(el2n)
    assert order.tolist() == [9, 1, 5, 3, 7, 2, 8, 4, 6, 0]
    schedule = DifficultySchedule(initial_ratio=0.5, addition_end_epoch=3, removal_epoch=5, removal_fraction=0.2)
    assert schedule.indices(order, 1).tolist() == [9, 1, 5, 3, 7]  # the easiest half
    assert len(schedule.indices(order, 2)) == 8  # harder ones added linearly
    assert schedule.indices(order, 3).tolist() == order.tolist() == schedule.indices(order, 4).tolist()
    assert schedule.indices(order, 5).tolist() == order[2:].tolist()  # easiest 20% dropped at once
    sizes = [len(schedule.indices(order, e)) for e in range(1, 5)]
    assert sizes == sorted(sizes)


# --- each method lowers its own matching loss --------------------------------------------------------


def _replayed_loss(matcher, synthetic: SyntheticSet, iterations=range(1000, 1004)) -> float:
    """The matching loss at fixed iteration seeds, without updating anything."""
    return float(np.mean([matcher.iterate(synthetic, lambda loss: None, iteration_generator(0, i), i) for i in iterations]))


@pytest.mark.parametrize(
    "name, make, iterations",
    [
        ("dm", lambda d: DistributionMatcher(_real(d), _new_model(), DistributionConfig(dsa_groups=GROUPS)), 20),
        ("dm+fiem", lambda d: DistributionMatcher(_real(d), _new_model(), DistributionConfig(fiem_ratio=0.25)), 20),
        ("dc", lambda d: GradientMatcher(_real(d), _new_model(), GradientConfig(outer_loop=2, inner_loop=2)), 8),
        ("dsa", lambda d: GradientMatcher(_real(d), _new_model(), GradientConfig(outer_loop=2, inner_loop=2, dsa_groups=GROUPS)), 8),
    ],
)
def test_gradient_and_distribution_matching_lower_their_loss(digits: ImageDataset, name: str, make, iterations: int) -> None:
    matcher = make(digits)
    synthetic = _synthetic(digits, 2)
    before = _replayed_loss(matcher, synthetic)
    run_loop(matcher, synthetic, iterations)
    after = _replayed_loss(matcher, synthetic)
    assert after < 0.85 * before, f"{name}: {before:.3f} -> {after:.3f}"


@pytest.mark.parametrize(
    "name, config, soft",
    [
        ("mtt", TrajectoryConfig(syn_steps=6, expert_epochs=2, max_start_epoch=2, dsa_groups=GROUPS), False),
        ("datm", TrajectoryConfig(syn_steps=6, expert_epochs=2, max_start_epoch=1, max_start_epoch_final=2, widen_iterations=10), True),
        ("pad", TrajectoryConfig(syn_steps=6, expert_epochs=2, max_start_epoch=2, fiem_ratio=0.25), True),
        ("mtt-graph", TrajectoryConfig(syn_steps=6, expert_epochs=2, max_start_epoch=2, unroll="graph"), False),
    ],
)
def test_trajectory_matching_lowers_its_loss(digits: ImageDataset, experts: Trajectories, name: str, config: TrajectoryConfig, soft: bool) -> None:
    matcher = TrajectoryMatcher(experts, _new_model()(), config)
    synthetic = _synthetic(digits, 2, lr=0.01, soft=soft)
    labels_before = synthetic.labels.clone()
    before = _replayed_loss(matcher, synthetic)
    run_loop(matcher, synthetic, 15)
    after = _replayed_loss(matcher, synthetic)
    assert after < 0.8 * before, f"{name}: {before:.3f} -> {after:.3f}"
    assert float(synthetic.lr) != 0.01  # the student learning rate is learned
    if soft:
        assert not torch.equal(synthetic.labels, labels_before)  # soft labels are learned too


def test_checkpointed_unroll_matches_the_full_graph(digits: ImageDataset, experts: Trajectories) -> None:
    grads = {}
    for unroll in ("checkpoint", "graph"):
        matcher = TrajectoryMatcher(experts, _new_model()(), TrajectoryConfig(syn_steps=4, max_start_epoch=2, unroll=unroll))
        synthetic = _synthetic(digits, 2, lr=0.01, soft=True)
        for t in synthetic.learnable().values():
            t.requires_grad_(True)
        matcher.iterate(synthetic, lambda loss: loss.backward(), iteration_generator(0, 7), 7)
        grads[unroll] = [t.grad.clone() for t in synthetic.learnable().values()]
    for a, b in zip(grads["checkpoint"], grads["graph"], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)


def test_expert_snapshots_are_copies_not_views(experts: Trajectories) -> None:
    steps = (experts.params[:, 1:] - experts.params[:, :-1]).norm(dim=2)
    assert torch.all(steps > 0)  # aliased snapshots would all equal the final weights


def test_datm_start_range_widens_during_distillation(experts: Trajectories) -> None:
    cfg = TrajectoryConfig(expert_epochs=2, max_start_epoch=1, max_start_epoch_final=3, widen_iterations=100)
    matcher = TrajectoryMatcher(experts, _new_model()(), cfg)
    assert [matcher.start_epoch_bound(i) for i in (0, 50, 100, 500)] == [1, 2, 3, 3]  # capped at epochs - M


# --- synthetic set files -----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_synthetic_set_round_trip(digits: ImageDataset, tmp_path: Path, suffix: str) -> None:
    x, _ = digits.train_tensors()
    zca = ZCAWhitening.fit(x)
    synthetic = _synthetic(digits, 3, lr=0.02, soft=True)
    synthetic.zca = zca
    synthetic.images = zca.apply(synthetic.images)
    path = synthetic.save_safetensors(tmp_path / "s.safetensors") if suffix == ".safetensors" else synthetic.save_npz(tmp_path / "s.npz")
    back = SyntheticSet.load(path)
    torch.testing.assert_close(back.images, synthetic.images)
    torch.testing.assert_close(back.labels, synthetic.labels)
    assert back.soft and back.ipc == 3 and back.num_classes == 10
    assert back.mean == pytest.approx(synthetic.mean) and float(back.lr) == pytest.approx(0.02)
    assert back.zca is not None
    torch.testing.assert_close(back.zca.matrix, zca.matrix)
    arrays = np.load(tmp_path / "s.npz", allow_pickle=False) if suffix == ".npz" else None
    if arrays is not None:
        # The uint8 copy is the un-whitened, de-normalised image: here the original digits.
        idx = pick_real(digits.y_train, 10, 3, 0)
        np.testing.assert_allclose(arrays["images_uint8"] / 255.0, digits.x_train[idx], atol=2 / 255)
    hard = _synthetic(digits, 1)
    hard_back = SyntheticSet.load(hard.save_npz(tmp_path / "h.npz"))
    assert not hard_back.soft and hard_back.labels.dtype == torch.int64 and hard_back.lr is None


def test_zca_is_invertible_and_whitens(digits: ImageDataset) -> None:
    x, _ = digits.train_tensors()
    zca = ZCAWhitening.fit(x, regularisation=1e-3)
    z = zca.apply(x)
    torch.testing.assert_close(zca.invert(z), x, rtol=1e-3, atol=1e-3)
    cov = torch.cov(z.reshape(len(z), -1).T.double())
    variances = torch.diagonal(cov)
    assert float(variances.max()) < 1.01  # whitened: no pixel keeps more than unit variance
    assert float(variances.median()) > 0.9  # and pixels with signal come out near 1 (the regulariser shrinks the rest)


# --- loop: resume and cancel -------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["dm", "mtt"])
def test_resume_from_checkpoint_repeats_the_uninterrupted_run(digits: ImageDataset, experts: Trajectories, tmp_path: Path, method: str) -> None:
    def make():
        if method == "dm":
            return DistributionMatcher(_real(digits), _new_model(), DistributionConfig(dsa_groups=GROUPS)), _synthetic(digits, 2)
        return TrajectoryMatcher(experts, _new_model()(), TrajectoryConfig(syn_steps=3, max_start_epoch=2)), _synthetic(digits, 2, lr=0.01)

    matcher, straight = make()
    full = run_loop(matcher, straight, 6, seed=4)
    matcher, resumed = make()
    ckpt = tmp_path / "c.pt"
    run_loop(matcher, resumed, 3, seed=4, checkpoint=ckpt, checkpoint_every=3)
    matcher, resumed = make()  # a fresh process would start from the initial set again
    second = run_loop(matcher, resumed, 6, seed=4, checkpoint=ckpt, checkpoint_every=3)
    assert second.resumed_from == 3
    assert second.loss_curve == full.loss_curve
    assert torch.equal(resumed.images, straight.images)
    if method == "mtt":
        assert torch.equal(resumed.lr, straight.lr)


def test_cancel_stops_between_iterations_and_keeps_a_checkpoint(digits: ImageDataset, tmp_path: Path) -> None:
    events = []
    tracker = Tracker(on_progress=events.append, should_cancel=lambda: len(events) >= 2)
    matcher = DistributionMatcher(_real(digits), _new_model(), DistributionConfig())
    ckpt = tmp_path / "c.pt"
    with pytest.raises(CancelledError):
        run_loop(matcher, _synthetic(digits, 1), 50, tracker=tracker, checkpoint=ckpt, checkpoint_every=1)
    assert len(events) == 2 and events[-1].stage == "distill" and events[-1].metrics["loss"] > 0
    state = torch.load(ckpt, weights_only=True)
    assert state["iteration"] == 3  # the iteration in flight finished and was saved before the check
    result = run_loop(matcher, _synthetic(digits, 1), 5, checkpoint=ckpt)
    assert result.resumed_from == 3 and len(result.loss_curve) == 5


def test_functional_student_matches_the_module(digits: ImageDataset) -> None:
    model = _new_model()()
    student = FunctionalStudent(model)
    theta = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
    x = torch.randn(5, 1, 8, 8)
    torch.testing.assert_close(student.forward(theta, x), model(x))


def test_pruned_init_prefers_correctly_classified_samples_and_widens_a_window_too_narrow_for_ipc() -> None:
    y = np.repeat([0, 1], 20)
    importance = np.tile(np.arange(20, dtype=np.float64), 2)
    window = SelectionConfig(mode="window", window=(0.7, 0.8))
    # Class 0: every sample allowed. Class 1: only every other one, leaving the window a single sample.
    allowed = np.ones(40, bool)
    allowed[20::2] = False
    picked = pick_pruned(importance, y, 2, 2, window, seed=0, allowed=allowed)
    assert np.bincount(y[picked]).tolist() == [2, 2]
    assert sorted(importance[picked[:2]]) == [14.0, 15.0]  # the 70-80th percentile of class 0
    # Class 1's allowed samples are 1, 3, ..., 19: the window widens below 0.7 to hold two of them.
    assert sorted(importance[picked[2:]]) == [13.0, 15.0]
    assert allowed[picked[2:]].all()
