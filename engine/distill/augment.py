"""Differentiable siamese augmentation (DSA; Zhao & Bilen, ICML 2021), written in plain torch.

Parameters are drawn once (:func:`sample_dsa`) and then applied (:func:`apply_dsa`), so the same
draw can transform a real batch and a synthetic batch ("siamese"), or be replayed exactly when an
unrolled training step is recomputed during backward. Every transform is differentiable in the
images: colour jitter is arithmetic, cutout a mask, flip an index reversal, and crop (translation),
scale and rotation are one affine resampling.

Like the reference method, each call picks ONE transform group of the strategy at random
(``color`` = brightness + saturation + contrast). Magnitudes follow the DSA paper's defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

DSA_GROUPS = ("color", "crop", "cutout", "flip", "scale", "rotate")
DEFAULT_STRATEGY = "color_crop_cutout_flip_scale_rotate"

# DSA paper defaults.
BRIGHTNESS = 1.0
SATURATION = 2.0
CONTRAST = 0.5
CROP_RATIO = 0.125
CUTOUT_RATIO = 0.5
SCALE = 1.2
ROTATE_DEGREES = 15.0


def default_strategy(channels: int) -> str:
    """Digits and other single-channel glyphs are not mirror-symmetric, so flipping is left out there."""
    return DEFAULT_STRATEGY if channels > 1 else DEFAULT_STRATEGY.replace("_flip", "")


def parse_strategy(strategy: str) -> tuple[str, ...]:
    groups = tuple(g for g in strategy.split("_") if g)
    unknown = [g for g in groups if g not in DSA_GROUPS]
    if unknown or not groups:
        raise ValueError(f"unknown DSA transform(s) {unknown or strategy!r}; use '_'-joined names from {', '.join(DSA_GROUPS)}")
    return groups


@dataclass(frozen=True)
class DSAParams:
    """One draw of augmentation parameters: a group name and per-sample tensors of length n."""

    group: str
    values: dict[str, torch.Tensor]

    def select(self, index: torch.Tensor) -> DSAParams:
        """The parameters of a subset of samples (e.g. one minibatch of the drawn batch)."""
        return DSAParams(self.group, {k: v[index.to(v.device)] for k, v in self.values.items()})


def _uniform(n: int, generator: torch.Generator, siamese: bool) -> torch.Tensor:
    # Siamese draws share one value across the batch, so real and synthetic batches of any size
    # (and any samples within them) get the identical transform.
    u = torch.rand(1 if siamese else n, generator=generator)
    return u.expand(n).clone() if siamese else u


def sample_dsa(groups: tuple[str, ...], n: int, generator: torch.Generator, siamese: bool = True) -> DSAParams:
    """Draw the parameters of one DSA call for n samples.

    Args:
        groups: transform groups to choose from (one is picked).
        n: number of samples the draw must cover.
        generator: CPU generator; the only source of randomness, so draws are reproducible.
        siamese: one parameter set shared by all n samples (matching), or one per sample (training).
    """
    group = groups[int(torch.randint(len(groups), (1,), generator=generator))]
    u = lambda: _uniform(n, generator, siamese)  # noqa: E731 - a draw, repeated per parameter
    if group == "color":
        values = {"brightness": u(), "saturation": u(), "contrast": u()}
    elif group == "crop":
        values = {"tx": u(), "ty": u()}
    elif group == "cutout":
        values = {"cx": u(), "cy": u()}
    elif group == "flip":
        values = {"flip": u()}
    elif group == "scale":
        values = {"sx": u(), "sy": u()}
    else:
        values = {"angle": u()}
    return DSAParams(group, values)


def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, align_corners=True)


def apply_dsa(x: torch.Tensor, params: DSAParams) -> torch.Tensor:
    """Apply a drawn transform to (n, C, H, W) images; differentiable with respect to ``x``."""
    n = x.shape[0]
    v = {k: t.to(x.device, x.dtype).reshape(n, 1, 1, 1) for k, t in params.values.items()}
    if params.group == "color":
        x = x + (v["brightness"] - 0.5) * BRIGHTNESS
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (v["saturation"] * SATURATION) + mean
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) * (v["contrast"] + CONTRAST) + mean
    if params.group == "cutout":
        h, w = x.shape[2:]
        ch, cw = max(1, int(h * CUTOUT_RATIO + 0.5)), max(1, int(w * CUTOUT_RATIO + 0.5))
        # Centres range over the whole image so the hole may hang over an edge, as in the reference.
        top = (v["cy"].reshape(n, 1) * (h + 1 - ch % 2)).floor() - ch // 2
        left = (v["cx"].reshape(n, 1) * (w + 1 - cw % 2)).floor() - cw // 2
        rows = torch.arange(h, device=x.device, dtype=x.dtype).reshape(1, h)
        cols = torch.arange(w, device=x.device, dtype=x.dtype).reshape(1, w)
        in_rows = (rows >= top) & (rows < top + ch)
        in_cols = (cols >= left) & (cols < left + cw)
        hole = in_rows.reshape(n, 1, h, 1) & in_cols.reshape(n, 1, 1, w)
        return x * (~hole).to(x.dtype)
    if params.group == "flip":
        return torch.where(v["flip"] < 0.5, x.flip(3), x)
    eye = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    if params.group == "crop":
        # Translation by up to CROP_RATIO of the image in each direction (grid units span [-1, 1]).
        eye[:, 0, 0] = eye[:, 1, 1] = 1.0
        eye[:, 0, 2] = (v["tx"].reshape(n) * 2 - 1) * 2 * CROP_RATIO
        eye[:, 1, 2] = (v["ty"].reshape(n) * 2 - 1) * 2 * CROP_RATIO
    elif params.group == "scale":
        eye[:, 0, 0] = (v["sx"].reshape(n) - 0.5) * SCALE + 1.0
        eye[:, 1, 1] = (v["sy"].reshape(n) - 0.5) * SCALE + 1.0
    else:
        angle = (v["angle"].reshape(n) - 0.5) * 2 * ROTATE_DEGREES * math.pi / 180
        eye[:, 0, 0], eye[:, 0, 1] = torch.cos(angle), -torch.sin(angle)
        eye[:, 1, 0], eye[:, 1, 1] = torch.sin(angle), torch.cos(angle)
    return _affine(x, eye)


class DSAugment:
    """Callable for training loops: fresh per-sample DSA on every batch (``augment_fn`` of ``train_model``)."""

    def __init__(self, strategy: str) -> None:
        self.groups = parse_strategy(strategy)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return apply_dsa(x, sample_dsa(self.groups, x.shape[0], generator, siamese=False))
