"""ZCA whitening of a dataset, the preprocessing trajectory matching uses on natural images (MTT, DATM, PAD).

Fitted on the normalised training images; applied to real, synthetic and test images alike, so a
synthetic set distilled in whitened space is also evaluated in it. The inverse maps distilled
images back to normalised pixel space for previews and uint8 export.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ZCAWhitening:
    mean: torch.Tensor  # (D,)
    matrix: torch.Tensor  # (D, D), symmetric
    inverse: torch.Tensor  # (D, D)

    @classmethod
    def fit(cls, x: torch.Tensor, regularisation: float = 0.1) -> ZCAWhitening:
        """Fit on (N, C, H, W) normalised images; ``regularisation`` is added to the eigenvalues
        (0.1 as in the reference implementations) so near-empty directions are not blown up."""
        flat = x.reshape(len(x), -1).double()
        mean = flat.mean(0)
        centred = flat - mean
        cov = centred.T @ centred / len(flat)
        eigval, eigvec = torch.linalg.eigh(cov)
        eigval = eigval.clamp_min(0) + regularisation
        matrix = eigvec @ torch.diag(eigval.rsqrt()) @ eigvec.T
        inverse = eigvec @ torch.diag(eigval.sqrt()) @ eigvec.T
        return cls(mean.float(), matrix.float(), inverse.float())

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(len(x), -1)
        return ((flat - self.mean.to(x.device)) @ self.matrix.to(x.device)).reshape(x.shape)

    def invert(self, z: torch.Tensor) -> torch.Tensor:
        flat = z.reshape(len(z), -1)
        return (flat @ self.inverse.to(z.device) + self.mean.to(z.device)).reshape(z.shape)
