"""The one synthetic-set type every distillation method optimises, with its file formats.

Images are stored class-major (ipc images of class 0, then class 1, ...) in the space models are trained in: normalised by the dataset's mean/std and,
when ZCA whitening is on, whitened. Labels are hard (K*ipc,) int64 or learnable soft logits
(K*ipc, K) float32; soft targets are their softmax. A learnable student learning rate (trajectory
matching) travels with the set because evaluation must train with it.

Files: ``.safetensors`` and ``.npz`` hold the same arrays (training-space images, labels, stats,
optional lr and ZCA, and ``images_uint8``, a de-normalised 0-255 copy for viewing and export).
Loading uses safetensors or ``np.load(allow_pickle=False)`` only: nothing is ever unpickled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from engine.atomic import atomic_path, write_atomic
from engine.distill.zca import ZCAWhitening


@dataclass
class SyntheticSet:
    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    lr: torch.Tensor | None = None
    zca: ZCAWhitening | None = None

    @property
    def soft(self) -> bool:
        return self.labels.dim() == 2

    @property
    def ipc(self) -> int:
        return len(self.images) // self.num_classes

    def class_slice(self, c: int) -> slice:
        """The images initialised for class c (fixed, even when soft labels drift)."""
        return slice(c * self.ipc, (c + 1) * self.ipc)

    def hard_labels(self) -> torch.Tensor:
        return self.labels.argmax(1) if self.soft else self.labels

    def targets(self) -> torch.Tensor:
        """What a model is trained against: class indices, or probabilities for soft labels."""
        return self.labels.detach().softmax(1) if self.soft else self.labels

    def learnable(self) -> dict[str, torch.Tensor]:
        """The tensors an optimiser may update, by name (images always; soft labels and lr when present)."""
        out = {"images": self.images}
        if self.soft:
            out["labels"] = self.labels
        if self.lr is not None:
            out["lr"] = self.lr
        return out

    def pixels(self) -> np.ndarray:
        """Images back in [0, 1]-scaled pixel space (un-whitened, de-normalised), clipped for display."""
        x = self.images.detach().float().cpu()
        if self.zca is not None:
            x = self.zca.invert(x)
        mean = torch.tensor(self.mean).reshape(1, -1, 1, 1)
        std = torch.tensor(self.std).reshape(1, -1, 1, 1)
        return (x * std + mean).clamp(0, 1).numpy()

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "images": self.images.detach().float().cpu().numpy(),
            "labels": self.labels.detach().cpu().numpy(),
            "mean": np.asarray(self.mean, np.float32),
            "std": np.asarray(self.std, np.float32),
            "num_classes": np.asarray(self.num_classes, np.int64),
            "images_uint8": (self.pixels() * 255).round().astype(np.uint8),
        }
        if self.lr is not None:
            arrays["lr"] = np.asarray(float(self.lr.detach()), np.float32)
        if self.zca is not None:
            arrays |= {"zca_mean": self.zca.mean.numpy(), "zca_matrix": self.zca.matrix.numpy(), "zca_inverse": self.zca.inverse.numpy()}
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> SyntheticSet:
        t = {k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}
        zca = ZCAWhitening(t["zca_mean"], t["zca_matrix"], t["zca_inverse"]) if "zca_matrix" in t else None
        return cls(
            images=t["images"].float(),
            labels=t["labels"],
            num_classes=int(t["num_classes"]),
            mean=tuple(float(m) for m in t["mean"]),
            std=tuple(float(s) for s in t["std"]),
            lr=t["lr"].float() if "lr" in t else None,
            zca=zca,
        )

    def save_safetensors(self, path: Path) -> Path:
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in self.to_arrays().items()}
        meta = {"format": "condense-synthetic-v1", "soft_labels": json.dumps(self.soft)}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
        return path

    def save_npz(self, path: Path) -> Path:
        return write_atomic(path, lambda f: np.savez_compressed(f, **self.to_arrays()))

    @classmethod
    def load(cls, path: Path) -> SyntheticSet:
        """Read either format back (chosen by suffix)."""
        if path.suffix == ".safetensors":
            return cls.from_arrays({k: v.numpy() for k, v in load_file(str(path)).items()})
        with np.load(path, allow_pickle=False) as data:
            return cls.from_arrays({k: data[k] for k in data.files})
