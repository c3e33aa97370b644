"""Device choice: CUDA whenever it is present, unless the caller pins the CPU."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

DevicePreference = Literal["auto", "cpu", "cuda"]


def resolve_device(preference: DevicePreference | str = "auto") -> torch.device:
    # Imported here, not above: configs name a DevicePreference, and the API process that reads them has no torch.
    import torch

    if preference == "cpu":
        return torch.device("cpu")
    if preference == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was requested but no CUDA device is available; use 'auto' or 'cpu'")
        return torch.device("cuda")
    if preference != "auto":
        raise ValueError(f"unknown device preference {preference!r}; expected 'auto', 'cpu' or 'cuda'")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
