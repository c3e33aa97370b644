"""The contract between the dynamics recorder and each score.

A score that needs training dynamics provides an accumulator: a small object that folds each
epoch's signals into bounded per-sample state (running sums, rolling windows), so the recorder
never keeps the epochs x N x C history. ``result()`` returns one float per training sample in
original order, with the paper's own sign convention; ``ScoreSpec.higher_is_important`` says
which end of it a pruning policy should keep.
"""

from __future__ import annotations

import numpy as np
import torch


class ScoreAccumulator:
    """Base class: override the hooks a score needs. Tensors named in ``state_names`` are checkpointed."""

    state_names: tuple[str, ...] = ()

    def __init__(self, num_samples: int, num_classes: int, epochs: int, device: torch.device) -> None:
        self.num_samples = num_samples
        self.num_classes = num_classes
        self.epochs = epochs
        self.device = device

    @property
    def eval_epochs(self) -> frozenset[int]:
        """Epochs after which this score needs an in-order evaluation pass over the training set."""
        return frozenset()

    def on_epoch(self, epoch: int, logits: torch.Tensor, probs: torch.Tensor, targets: torch.Tensor) -> None:
        """End of an epoch: each sample's logits and softmax from its one training presentation this
        epoch, in original order (the loop shows every sample exactly once per epoch)."""

    def on_eval(self, epoch: int, logits: torch.Tensor, features: torch.Tensor, targets: torch.Tensor) -> None:
        """An evaluation pass (eval mode, no augmentation) over the whole training set, in original order."""

    def result(self) -> np.ndarray:
        raise NotImplementedError

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name) for name in self.state_names}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name in self.state_names:
            setattr(self, name, state[name].to(self.device))


class FinalEvalAccumulator(ScoreAccumulator):
    """A score read once, from the evaluation pass after the last epoch: ``on_eval`` sets ``value``."""

    state_names = ("value",)

    def __init__(self, num_samples: int, num_classes: int, epochs: int, device: torch.device) -> None:
        super().__init__(num_samples, num_classes, epochs, device)
        self.value = torch.zeros(num_samples, device=device)

    @property
    def eval_epochs(self) -> frozenset[int]:
        return frozenset({self.epochs})

    def result(self) -> np.ndarray:
        return to_numpy(self.value)


def error_l2(probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """||softmax - onehot(y)||_2 per sample: the error vector norm behind EL2N and EVA."""
    onehot = torch.nn.functional.one_hot(targets, probs.shape[1]).to(probs.dtype)
    return (probs - onehot).norm(dim=1)


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().cpu().numpy()
