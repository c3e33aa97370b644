"""Gradient matching's settings (DC, DSA): light, so that the API and the CLI read them without torch.
The matcher is ``engine.distill.gradient``. Fields declared with ``setting`` are the family's options in the
API and the CLI (``engine.distill.families``); the others are the pipeline's or fixed."""

from __future__ import annotations

from dataclasses import dataclass

from engine.config_fields import setting


@dataclass
class GradientConfig:
    outer_loop: int | None = setting(None, "outer loops (network re-draws) per iteration; left out: DC's choice for the IPC", ge=1, le=1000)
    inner_loop: int | None = setting(None, "network updates per outer loop; left out: DC's choice for the IPC", ge=1, le=1000)
    batch_real: int = setting(256, "real images per class and step", ge=1, le=8192)
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
