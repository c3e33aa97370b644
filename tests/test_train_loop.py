from pathlib import Path

import pytest
import torch

from engine.data.dataset import ImageDataset
from engine.models import create_model
from engine.progress import CancelledError, ProgressEvent, Tracker
from engine.seed import seed_everything
from engine.train import TrainConfig, train_model


def fresh_model(seed: int = 0) -> torch.nn.Module:
    seed_everything(seed)
    return create_model("convnet", channels=1, num_classes=10, image_size=8, width=8)


def test_training_learns_and_is_reproducible(digits: ImageDataset) -> None:
    x, y = digits.train_tensors()
    cfg = TrainConfig(epochs=3, seed=3)
    a = train_model(fresh_model(), x, y, cfg)
    b = train_model(fresh_model(), x, y, cfg)
    assert a.history[-1]["train_acc"] > 0.6
    assert a.history == b.history
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_resume_from_checkpoint_matches_an_uninterrupted_run(digits: ImageDataset, tmp_path: Path) -> None:
    x, y = digits.train_tensors()
    cfg = TrainConfig(epochs=4, seed=1)
    straight = train_model(fresh_model(), x, y, cfg)
    ckpt = tmp_path / "run.pt"
    train_model(fresh_model(), x, y, cfg, checkpoint=ckpt, stop_after=2)
    resumed = train_model(fresh_model(), x, y, cfg, checkpoint=ckpt)
    assert resumed.resumed_from_epoch == 2
    assert resumed.history == straight.history
    for pa, pb in zip(straight.model.parameters(), resumed.model.parameters(), strict=True):
        torch.testing.assert_close(pa, pb)


def test_progress_is_monotonic_and_cancellation_stops_between_steps(digits: ImageDataset) -> None:
    x, y = digits.train_tensors()
    events: list[ProgressEvent] = []
    train_model(fresh_model(), x, y, TrainConfig(epochs=2, batch_size=32), tracker=Tracker(on_progress=events.append))
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert any("loss" in e.metrics for e in events)

    calls = {"n": 0}

    def cancel_after_a_few() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    with pytest.raises(CancelledError):
        train_model(fresh_model(), x, y, TrainConfig(epochs=50, batch_size=16), tracker=Tracker(should_cancel=cancel_after_a_few))


def test_sample_weights_change_the_objective(digits: ImageDataset) -> None:
    x, y = digits.train_tensors()
    cfg = TrainConfig(epochs=1, seed=0)
    plain = train_model(fresh_model(), x, y, cfg).history[-1]["loss"]
    weights = torch.where(y == 0, 10.0, 1.0)
    weighted = train_model(fresh_model(), x, y, cfg, sample_weights=weights).history[-1]["loss"]
    assert plain != weighted


def test_tracker_spans_nest() -> None:
    seen: list[float] = []
    outer = Tracker(on_progress=lambda e: seen.append(e.fraction))
    inner = outer.span(0.5, 1.0).span(0.0, 0.5)
    inner.report("s", 1.0)
    assert seen == [pytest.approx(0.75)]
