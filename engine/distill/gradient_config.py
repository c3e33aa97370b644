"""Gradient matching's settings (DC, DSA): light, so that the API and the CLI read them without torch.
The matcher is ``engine.distill.gradient``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DCConfig:
    outer_loop: int | None = None  # None: DC's choice for the IPC (see loop_lengths)
    inner_loop: int | None = None
    batch_real: int = 256
    lr_images: float = 0.1
    momentum: float = 0.5
    lr_net: float = 0.01
    dsa_groups: tuple[str, ...] | None = None
    fiem_ratio: float = 0.0


def loop_lengths(ipc: int) -> tuple[int, int]:
    """DC's (outer_loop, inner_loop) per images-per-class: (1, 1) for 1, (10, 50) for 10, (50, 10) for 50."""
    if ipc == 1:
        return 1, 1
    if ipc <= 10:
        return 10, 50
    return 50, 10
