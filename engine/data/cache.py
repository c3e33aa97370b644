"""A size-bounded, read-through cache of decoded datasets on local disk, keyed by what decoding depends on.

Decoding an archive (thousands of PNGs, gzip'd IDX files) costs more than reading its float32 arrays back,
so a worker that runs several jobs on one dataset decodes it once. Entries are safetensors files (arrays
plus a JSON header; nothing pickled), written under a temporary name and renamed into place, so a reader
never sees half an entry and two workers filling one key at once leave one whole file. Least recently
used entries go first when the folder outgrows its bound.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from engine.data.dataset import ImageDataset, SplitInfo

FORMAT = "condense-decoded-v1"
_ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def cache_key(content_hash: str, **decoding: object) -> str:
    """The entry of a source with this content, decoded with these options (test fraction, split seed...)."""
    payload = json.dumps({"content": content_hash, "decoding": decoding, "format": FORMAT}, sort_keys=True, default=str)
    return "decoded-" + hashlib.sha256(payload.encode()).hexdigest()[:32]


class DecodedCache:
    """Decoded datasets in ``root``, at most ``max_bytes`` of them (one entry may exceed it alone: it is
    kept until the next one arrives)."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.root.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        if not key.replace("-", "").isalnum():
            raise ValueError(f"cache key must be alphanumeric, got {key!r}")
        return self.root / f"{key}.safetensors"

    def get_or_load(self, key: str, load: Callable[[], ImageDataset]) -> ImageDataset:
        """The cached dataset for ``key``, or ``load()``'s, which is then kept."""
        path = self._path(key)
        if (dataset := self._read(path)) is not None:
            self.hits += 1
            return dataset
        self.misses += 1
        dataset = load()
        self._write(path, dataset)
        self._evict(keep=path)
        return dataset

    def _read(self, path: Path) -> ImageDataset | None:
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
            if meta.get("format") != FORMAT:
                return None
            arrays = load_file(str(path))
        except (OSError, ValueError, SafetensorError):
            return None  # missing, evicted meanwhile, or damaged: decode again
        os.utime(path)  # recently used
        info = json.loads(meta["info"])
        return ImageDataset(
            **{name: arrays[name].numpy() for name in _ARRAYS},
            classes=info["classes"], name=info["name"], format=info["format"], content_hash=info["content_hash"],
            split=SplitInfo(**info["split"]), mean=tuple(info["mean"]), std=tuple(info["std"]),
        )

    def _write(self, path: Path, dataset: ImageDataset) -> None:
        info = {
            "classes": list(dataset.classes), "name": dataset.name, "format": dataset.format,
            "content_hash": dataset.content_hash, "split": dataset.split.to_dict(),
            "mean": list(dataset.mean), "std": list(dataset.std),
        }
        tensors = {name: torch.from_numpy(np.ascontiguousarray(getattr(dataset, name))) for name in _ARRAYS}
        fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".tmp")
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata={"format": FORMAT, "info": json.dumps(info)})
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _evict(self, keep: Path) -> None:
        entries = []
        for path in self.root.glob("*.safetensors"):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            entries.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries, key=lambda e: e[0]):
            if total <= self.max_bytes:
                break
            if path != keep:
                path.unlink(missing_ok=True)
                total -= size

