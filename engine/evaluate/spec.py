"""How a training set is evaluated: which model is trained on it, for how long, with how many seeds."""

from __future__ import annotations

from dataclasses import dataclass

from engine.train.config import TrainConfig


@dataclass
class EvalSpec:
    """What model to train on the subset and how."""

    model: str = "convnet"
    width: int | None = 64
    depth: int | None = None
    epochs: int = 20
    batch_size: int = TrainConfig.batch_size
    lr: float = TrainConfig.lr
    augment: bool = False
    seeds: int = 3
    device: str = "auto"
    # DSA on every training batch, as distilled sets are evaluated in the literature (e.g. "color_crop").
    dsa_strategy: str | None = None
    # Train the seeds' models together, vectorised over the seed axis (engine.evaluate.batched), where the
    # model and the spec allow it; the same models either way.
    batched: bool = False
