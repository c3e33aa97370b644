"""PAD's filtering of information embedding (FIEM): leave shallow-layer parameters out of matching.

The model's parameters, flattened in registration order (shallow to deep for every registered
architecture), form one vector of length L; the first ``floor(L * ratio)`` entries are masked out
of the matching loss (PAD, Eq. 4). The same flat order serves trajectory matching (a flat mask)
and gradient matching (one mask per parameter tensor).
"""

from __future__ import annotations

import torch
from torch import nn


def shallow_mask(shapes: list[torch.Size], ratio: float) -> torch.Tensor:
    """(L,) float mask over the flattened parameters: 0 for the first ``ratio`` share, 1 after."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"FIEM ratio must be in [0, 1), got {ratio}")
    total = sum(s.numel() for s in shapes)
    mask = torch.ones(total)
    mask[: int(total * ratio)] = 0.0
    return mask


def per_parameter_masks(model: nn.Module, ratio: float) -> list[torch.Tensor]:
    """The flat mask cut back into one tensor per parameter (same shapes, same order as ``parameters()``)."""
    params = list(model.parameters())
    flat = shallow_mask([p.shape for p in params], ratio)
    return [chunk.reshape(p.shape) for chunk, p in zip(flat.split([p.numel() for p in params]), params, strict=True)]
