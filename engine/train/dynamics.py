"""Records per-sample training dynamics for many scores during ONE training run.

Per minibatch the recorder only copies the training logits into one (N, C) epoch buffer; at the
end of the epoch every accumulator folds the whole buffer at once. Every sample is presented once
per epoch, so this equals per-presentation bookkeeping (forgetting, AUM) while replacing hundreds
of tiny per-batch kernels with a few large ones: on a busy CPU each tiny kernel can wait a whole
scheduler slice for its threads. Memory is the epoch buffer plus each accumulator's bounded
state, independent of the number of epochs.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.scores.base import ScoreAccumulator


class DynamicsRecorder:
    def __init__(self, accumulators: dict[str, ScoreAccumulator], targets: torch.Tensor, num_classes: int) -> None:
        self.accumulators = accumulators
        first = next(iter(accumulators.values()))
        self.device = first.device
        hard = targets if targets.dim() == 1 else targets.argmax(1)
        self.targets = hard.to(self.device)
        self.epoch_logits = torch.zeros(len(targets), num_classes, device=self.device)
        self.eval_epochs = frozenset().union(*(acc.eval_epochs for acc in accumulators.values()))

    def on_batch(self, epoch: int, index: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        self.epoch_logits[index] = logits

    def on_epoch_end(self, epoch: int) -> None:
        probs = self.epoch_logits.softmax(1)
        for acc in self.accumulators.values():
            acc.on_epoch(epoch, self.epoch_logits, probs, self.targets)

    def on_eval(self, epoch: int, logits: torch.Tensor, features: torch.Tensor) -> None:
        for acc in self.accumulators.values():
            if epoch in acc.eval_epochs:
                acc.on_eval(epoch, logits, features, self.targets)

    def results(self) -> dict[str, np.ndarray]:
        return {name: acc.result() for name, acc in self.accumulators.items()}

    def state_dict(self) -> dict:
        return {name: acc.state_dict() for name, acc in self.accumulators.items()}

    def load_state_dict(self, state: dict) -> None:
        for name, acc in self.accumulators.items():
            acc.load_state_dict(state[name])
