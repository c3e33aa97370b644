"""The in-memory dataset type every engine stage works on."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Literal

import numpy as np

from engine.data.hashing import hash_arrays
from engine.data.sources import Sources

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class SplitInfo:
    """Where the test split came from, so a held-out split can be reproduced exactly."""

    source: Literal["provided", "held_out"]
    test_fraction: float | None = None
    seed: int | None = None

    def to_dict(self) -> dict:
        return {"source": self.source, "test_fraction": self.test_fraction, "seed": self.seed}


@dataclass(frozen=True)
class ImageDataset:
    """A validated image-classification dataset.

    Images are float32 arrays in (N, C, H, W) on their original intensity scale divided by the
    format's maximum (uint8 images are divided by 255, so most data lies in [0, 1]); ``mean`` and
    ``std`` are per-channel statistics of the training images, applied by :meth:`train_tensors`.

    Attributes:
        x_train: (N, C, H, W) float32 training images.
        y_train: (N,) int64 labels in [0, num_classes).
        x_test: (M, C, H, W) float32 test images.
        y_test: (M,) int64 test labels.
        classes: class names, indexed by label.
        name: a human name (file stem or builtin name).
        format: the detected source format (``npz``, ``imagefolder``, ``idx``, ``cifar``, ``builtin``).
        content_hash: sha256 of the source bytes; identical uploads share it.
        split: how the test split was obtained.
        train_sources, test_sources: where each sample came from (:mod:`engine.data.sources`); None for
            arrays made in code.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    name: str
    format: str
    content_hash: str
    split: SplitInfo
    mean: tuple[float, ...] = field(default=())
    std: tuple[float, ...] = field(default=())
    train_sources: Sources | None = field(default=None, compare=False)
    test_sources: Sources | None = field(default=None, compare=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.x_train.shape[1:]
        return int(c), int(h), int(w)

    def class_counts(self, split: Literal["train", "test"] = "train") -> list[int]:
        y = self.y_train if split == "train" else self.y_test
        return np.bincount(y, minlength=self.num_classes).tolist()

    def normalise(self, x: np.ndarray) -> torch.Tensor:
        # torch is imported where tensors are made: the API reads datasets (and their summaries) without it.
        import torch

        mean = torch.tensor(self.mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(1, -1, 1, 1)
        return (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)) - mean) / std

    def train_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.normalise(self.x_train), _labels(self.y_train)

    def test_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.normalise(self.x_test), _labels(self.y_test)

    @cached_property
    def train_fingerprint(self) -> str:
        """sha256 of exactly what training sees (images, labels, normalisation), once per dataset object: a
        subset or another split keeps ``content_hash`` but not this. Keys of stored runs and baselines."""
        return hash_arrays("train", self.x_train, self.y_train, np.asarray(self.mean), np.asarray(self.std))

    @cached_property
    def evaluation_fingerprint(self) -> str:
        """sha256 of everything an accuracy measured on this dataset depends on besides the protocol: what
        training sees (:attr:`train_fingerprint`), the test images and labels, the class names and the split.
        Keys of stored baselines: two uploads that share their training data but not their test set must
        not share a random-subset or full-data accuracy."""
        described = json.dumps({"train": self.train_fingerprint, "classes": list(self.classes),
                                "split": self.split.to_dict()}, sort_keys=True)
        return hash_arrays("evaluation:" + described, self.x_test, self.y_test)

    def with_train_subset(self, indices: np.ndarray) -> ImageDataset:
        """The same dataset with only the given training samples (order kept); statistics unchanged."""
        idx = np.asarray(indices, dtype=np.int64)
        sources = None if self.train_sources is None else self.train_sources.take(idx)
        return replace(self, x_train=self.x_train[idx], y_train=self.y_train[idx], train_sources=sources)

    def source_names(self, indices: np.ndarray | None = None) -> list[str]:
        """The source id of each training sample (of ``indices``): its file, or its row in a file; a dataset made
        in code names samples by their index in it."""
        if self.train_sources is None:
            idx = np.arange(len(self.y_train)) if indices is None else np.asarray(indices)
            return [f"[{i}]" for i in idx.tolist()]
        return self.train_sources.names(indices)

    def summary(self) -> dict:
        """JSON-ready description, the same shape the service stores for a dataset record."""
        return DatasetSummary(
            name=self.name, format=self.format, content_hash=self.content_hash,
            num_train=int(len(self.y_train)), num_test=int(len(self.y_test)), classes=list(self.classes),
            class_counts=self.class_counts("train"), test_class_counts=self.class_counts("test"),
            image_shape=self.image_shape, split=self.split, mean=self.mean, std=self.std,
        ).to_dict()


@dataclass(frozen=True)
class DatasetSummary:
    """What describes a dataset without its pixels: :func:`~engine.data.inspect_dataset` gives it
    for a source, and :meth:`ImageDataset.summary` is its :meth:`to_dict` for a loaded dataset."""

    name: str
    format: str
    content_hash: str
    num_train: int
    num_test: int
    classes: list[str]
    class_counts: list[int]
    test_class_counts: list[int]
    image_shape: tuple[int, int, int]
    split: SplitInfo
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def decoded_bytes(self) -> int:
        """Size of the float32 images (train and test) that loading the dataset holds in memory."""
        c, h, w = self.image_shape
        return (self.num_train + self.num_test) * c * h * w * np.dtype(np.float32).itemsize

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "format": self.format,
            "content_hash": self.content_hash,
            "num_train": self.num_train,
            "num_test": self.num_test,
            "num_classes": len(self.classes),
            "classes": list(self.classes),
            "class_counts": list(self.class_counts),
            "test_class_counts": list(self.test_class_counts),
            "image_shape": list(self.image_shape),
            "split": self.split.to_dict(),
            "mean": list(self.mean),
            "std": list(self.std),
        }


def _labels(y: np.ndarray) -> torch.Tensor:
    import torch  # where tensors are made, as in ImageDataset.normalise

    return torch.from_numpy(y.astype(np.int64))
