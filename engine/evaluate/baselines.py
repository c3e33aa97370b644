"""Baselines kept for reuse: a random subset's and the full data's accuracy depend only on the data, the
evaluation protocol, the subset's per-class counts and the seed, not on which score or policy a job used.

So every job (and every point of a sweep) that evaluates against the same baseline can take the stored
figures instead of training the same models again. The engine keeps them in memory for one run; the
service persists them per tenant.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import Any, Protocol

import numpy as np

from engine.evaluate.accuracy import TRAINING_ORDER
from engine.evaluate.spec import EvalSpec


class BaselineStore(Protocol):
    """Accuracy reports (``AccuracyStats.to_dict()``) by key."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, stats: dict[str, Any]) -> None: ...


class MemoryBaselines:
    """A BaselineStore for one process (a sweep's points, a benchmark's cells)."""

    def __init__(self) -> None:
        self._stats: dict[str, dict[str, Any]] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        return self._stats.get(key)

    def put(self, key: str, stats: dict[str, Any]) -> None:
        self._stats[key] = stats


def baseline_key(data_fingerprint: str, kind: str, spec: EvalSpec, counts: np.ndarray | None, seed: int) -> str:
    """``kind`` is ``random`` (a class-matched random subset with ``counts`` per class) or ``full``;
    ``data_fingerprint`` is the dataset's ``evaluation_fingerprint`` (training and test data, classes, split)."""
    payload = {
        "data": data_fingerprint,
        "kind": kind,
        "spec": asdict(spec),
        "counts": None if counts is None else [int(c) for c in counts],
        "seed": seed,
        "order": TRAINING_ORDER,
    }
    return f"baseline-{kind}-" + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]
