"""PAD's filtering of information extraction (FIEX): a difficulty-ordered data scheduler for experts.

Samples are ranked easy to hard (EL2N ascending). An expert first trains on the easiest
``initial_ratio`` of the data, harder samples are added linearly until ``addition_end_epoch``
(when all data is in), and from ``removal_epoch`` on the easiest ``removal_fraction`` is dropped
in a single step (PAD found one-shot removal better than gradual removal; Appendix A.2).

Gradient and distribution matching have no experts to schedule; for them FIEX leaves a share of each
class's real images out of matching instead (``filter_real``, 003 App. A.1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from engine.config_fields import offered, setting


@dataclass
class DifficultySchedule:
    """Fields declared with ``setting`` are a job's ``schedule`` options (the API's and the CLI's)."""

    initial_ratio: float = setting(0.75, "share of the easiest samples an expert starts on", gt=0, le=1)
    addition_end_epoch: int = setting(20, "the expert epoch by which all data is in", ge=1, le=1000)
    removal_epoch: int | None = setting(
        None, "the expert epoch from which the easiest samples are dropped; null: none are", ge=1, le=1000
    )
    removal_fraction: float = setting(0.1, "share of the easiest samples dropped then", ge=0, lt=1)

    @classmethod
    def for_experts(cls, epochs: int, **given: Any) -> DifficultySchedule:
        """PAD's FIEX settings as fractions of its 100-epoch expert runs, scaled to ``epochs``, with the
        options ``given`` in their place.

        PAD Table 10 (CIFAR-10): initial ratio 0.75, all data in by epoch 20 (AEE); the easiest 10%
        removed at every IPC (App., hyper-parameters). The removal epoch, 60 of 100, is the one in PAD's public expert script
        (``rm_start_epoch=60``), quoted: the paper's text does not state it.
        """
        add_end = max(1, round(0.2 * epochs))
        return replace(cls(0.75, add_end, max(add_end + 1, round(0.6 * epochs)), 0.1), **given)

    def __post_init__(self) -> None:
        for option in offered(type(self)):
            value = getattr(self, option.field)
            if (problem := option.setting.problem(value)) is not None:
                raise ValueError(f"{option.name} {problem}, got {value}")

    def fraction(self, epoch: int) -> float:
        """Share of the easiest samples included at (1-based) ``epoch`` before any removal."""
        progress = min(1.0, (epoch - 1) / max(self.addition_end_epoch - 1, 1))
        return self.initial_ratio + (1.0 - self.initial_ratio) * progress

    def indices(self, easy_to_hard: np.ndarray, epoch: int) -> np.ndarray:
        """The training indices for ``epoch``, given every sample ordered from easiest to hardest."""
        n = len(easy_to_hard)
        end = min(n, math.ceil(self.fraction(epoch) * n))
        start = int(self.removal_fraction * n) if self.removal_epoch is not None and epoch >= self.removal_epoch else 0
        return easy_to_hard[start:end]


# 003 App. A.1 removes hard samples "when IPC is small" and easy ones "when IPC becomes large", and Table 6
# tries IPC 1 and 10 (hard removed) against 500 (easy removed); it names no boundary. Ours is IPC 50, the
# bound FIEM_BY_IPC already draws between PAD's small and large settings.
FIEX_DROPS_HARDEST_UP_TO_IPC = 50
FIEX_NEEDS = ("fiex_ratio filters the real images DC, DSA and DM match; trajectory methods filter their experts' "
              "data with the schedule (on for pad)")


def fiex_drops(ipc: int) -> str:
    """Which end of the EL2N order FIEX leaves out of DC/DM matching at this IPC."""
    return "hardest" if ipc <= FIEX_DROPS_HARDEST_UP_TO_IPC else "easiest"


def filter_real(el2n: np.ndarray, labels: np.ndarray, num_classes: int, ratio: float, drops: str) -> np.ndarray:
    """Indices of the real images DC/DM match against after FIEX (003 App. A.1, Table 6): ``ratio`` of
    each class removed from its ``drops`` end of the EL2N order, so the class balance is kept; every
    class keeps at least one image."""
    kept = []
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        ordered = members[easy_to_hard(el2n[members])]
        removed = min(len(ordered) - 1, int(ratio * len(ordered)))
        kept.append(ordered[: len(ordered) - removed] if drops == "hardest" else ordered[removed:])
    return np.sort(np.concatenate(kept))


def easy_to_hard(el2n: np.ndarray) -> np.ndarray:
    """Sample indices by increasing EL2N (higher EL2N = harder); ties keep index order."""
    return np.argsort(np.asarray(el2n), kind="stable").astype(np.int64)
