"""A size-bounded, read-through cache of decoded datasets on local disk, keyed by what decoding depends on.

Decoding an archive (thousands of PNGs, gzip'd IDX files) costs more than reading its float32 arrays back,
so a worker that runs several jobs on one dataset decodes it once. Entries are safetensors files (arrays
plus a JSON header; nothing pickled), written under a temporary name and renamed into place, so a reader
never sees half an entry and two workers filling one key at once leave one whole file. Least recently
used entries go first when the folder outgrows its bound.

An entry is checked before it is served: its header records a sha256 of its arrays and description, and
an entry whose contents no longer match (a flipped bit, an edit) is deleted and decoded again, so one
damaged file cannot hand every later job on those bytes other labels or pixels than the upload's. The
service also compares what it loads with the dataset record it registered (``app.services.datasets``).
:meth:`DecodedCache.purge` removes the entries of data no longer registered, so a deleted dataset's
pixels do not outlive it on the workers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from engine.atomic import atomic_path
from engine.data.dataset import ImageDataset, SplitInfo
from engine.data.hashing import hash_arrays
from engine.data.sources import Sources

FORMAT = "condense-decoded-v3"  # v3: with each sample's source id
_ARRAYS = ("x_train", "y_train", "x_test", "y_test", "train_file", "train_row", "test_file", "test_row")
log = logging.getLogger(__name__)


def _digest(info: str, arrays: dict[str, np.ndarray]) -> str:
    return hash_arrays(info, *(arrays[name] for name in _ARRAYS))


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

    def get_or_load(
        self, key: str, load: Callable[[], ImageDataset], on_damaged: Callable[[str], None] | None = None
    ) -> ImageDataset:
        """The cached dataset for ``key``, or ``load()``'s, which is then kept. ``on_damaged`` hears of an
        entry that failed its check (it is deleted and ``load()`` used instead)."""
        path = self._path(key)
        if (dataset := self._read(path, on_damaged)) is not None:
            self.hits += 1
            return dataset
        self.misses += 1
        dataset = load()
        self._write(path, dataset)
        self._evict(keep=path)
        return dataset

    def _read(self, path: Path, on_damaged: Callable[[str], None] | None) -> ImageDataset | None:
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
            if meta.get("format") != FORMAT:
                return None
            arrays = {name: tensor.numpy() for name, tensor in load_file(str(path)).items()}
            intact = _digest(meta["info"], arrays) == meta["sha256"]
        except (OSError, ValueError, KeyError, SafetensorError):
            return None  # missing, evicted meanwhile, or damaged: decode again
        if not intact:
            message = f"the decoded-cache entry {path.stem} does not match its recorded sha256; deleted, decoding again"
            log.warning(message)
            if on_damaged is not None:
                on_damaged(message)
            path.unlink(missing_ok=True)
            return None
        os.utime(path)  # recently used
        info = json.loads(meta["info"])
        sources = {split: Sources(tuple(info[f"{split}_files"]), arrays[f"{split}_file"], arrays[f"{split}_row"])
                   for split in ("train", "test")}
        return ImageDataset(
            **{name: arrays[name] for name in ("x_train", "y_train", "x_test", "y_test")},
            classes=info["classes"], name=info["name"], format=info["format"], content_hash=info["content_hash"],
            split=SplitInfo(**info["split"]), mean=tuple(info["mean"]), std=tuple(info["std"]),
            train_sources=sources["train"], test_sources=sources["test"],
        )

    def _write(self, path: Path, dataset: ImageDataset) -> None:
        sources = {"train": dataset.train_sources or Sources.rows(dataset.name, len(dataset.y_train)),
                   "test": dataset.test_sources or Sources.rows(f"{dataset.name} test", len(dataset.y_test))}
        info = {
            "classes": list(dataset.classes), "name": dataset.name, "format": dataset.format,
            "content_hash": dataset.content_hash, "split": dataset.split.to_dict(),
            "mean": list(dataset.mean), "std": list(dataset.std),
            **{f"{split}_files": list(s.files) for split, s in sources.items()},
        }
        arrays = {name: np.ascontiguousarray(getattr(dataset, name)) for name in ("x_train", "y_train", "x_test", "y_test")}
        for split, s in sources.items():
            arrays |= {f"{split}_file": np.ascontiguousarray(s.file), f"{split}_row": np.ascontiguousarray(s.row)}
        described = json.dumps(info)
        with atomic_path(path) as tmp:
            save_file({name: torch.from_numpy(a) for name, a in arrays.items()}, str(tmp),
                      metadata={"format": FORMAT, "info": described, "sha256": _digest(described, arrays)})

    def discard(self, key: str) -> None:
        """Deletes ``key``'s entry (its reader found it does not hold what it should)."""
        self._path(key).unlink(missing_ok=True)

    def purge(self, registered: Callable[[set[str]], set[str]]) -> list[str]:
        """Deletes the entries whose source is no longer registered; returns their content hashes.

        ``registered`` gets the content hashes the entries hold and answers those still in use (the
        service asks its database), so a deleted dataset's decoded pixels go with it."""
        entries: dict[Path, str] = {}
        for path in self.root.glob("*.safetensors"):
            try:
                with safe_open(str(path), framework="pt") as f:
                    entries[path] = json.loads((f.metadata() or {})["info"])["content_hash"]
            except (OSError, ValueError, KeyError, SafetensorError):
                entries[path] = ""  # unreadable: nothing can use it
        keep = registered({content for content in entries.values() if content})
        gone = []
        for path, content in entries.items():
            if content not in keep:
                path.unlink(missing_ok=True)
                gone.append(content)
        return gone

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

