"""Training: one loop for proxies, evaluation and experts, with per-sample dynamics recording."""

from engine.train.config import TrainConfig
from engine.train.loop import TrainObserver, TrainResult, predict, train_model

__all__ = ["TrainConfig", "TrainObserver", "TrainResult", "predict", "train_model"]
