"""Cheap on-device training augmentation (random crop with padding, horizontal flip)."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def crop_flip(x: torch.Tensor, generator: torch.Generator | None = None, pad: int = 2, flip: bool = True) -> torch.Tensor:
    """Randomly shift each image by up to ``pad`` pixels (zero fill) and mirror half of them.

    Shifts are drawn per sample; done with one padded gather so it stays cheap on CPU and GPU.
    """
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    rows = (dy.view(n, 1) + torch.arange(h, device=x.device).view(1, h)).view(n, 1, h, 1)
    cols = (dx.view(n, 1) + torch.arange(w, device=x.device).view(1, w)).view(n, 1, 1, w)
    out = padded.gather(2, rows.expand(n, x.shape[1], h, padded.shape[3]))
    out = out.gather(3, cols.expand(n, x.shape[1], h, w))
    if flip:
        mirror = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        out = torch.where(mirror.view(n, 1, 1, 1), out.flip(3), out)
    return out
