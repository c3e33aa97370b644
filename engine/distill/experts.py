"""Expert trajectories for trajectory matching: training, storage and reuse.

An expert is a model trained on real data with plain SGD, its flattened parameters recorded at
the start and after every epoch. Experts cost most of a trajectory-matching job, so they are kept
in an :class:`ExpertStore` under a key made of everything they depend on (the exact training
data, model, training config, data scheduler and seed); a later job with the same key reuses
them. The service plugs its blob store into the same two-method interface.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch.nn.utils import parameters_to_vector

from engine.distill.augment import DSAugment
from engine.distill.base import ModelFactory, RealData
from engine.distill.experts_config import ExpertConfig
from engine.distill.schedule import DifficultySchedule
from engine.progress import Tracker
from engine.store import FileStore, LocalFileStore, StoredFileDamaged, reuse_or_compute
from engine.train.loop import iterate_minibatches, per_sample_loss


_FORMAT = "condense-experts-v1"
# The expert store is a plain file store; the names say what it holds where it is used.
ExpertStore = FileStore
LocalExpertStore = LocalFileStore


@dataclass
class Trajectories:
    """(experts, epochs + 1, parameters) flattened snapshots; index 0 is the initialisation."""

    params: torch.Tensor

    @property
    def epochs(self) -> int:
        return self.params.shape[1] - 1

    def save(self, path: Path) -> Trajectories:
        save_file({"trajectories": self.params.contiguous()}, str(path), metadata={"format": _FORMAT})
        return self

    @classmethod
    def load(cls, path: Path, key: str, experts: int, epochs: int) -> Trajectories:
        """The stored set, checked to hold ``experts`` trajectories of ``epochs`` + 1 snapshots."""
        try:
            with safe_open(str(path), framework="pt") as f:
                stored_format = (f.metadata() or {}).get("format")
            params = load_file(str(path))["trajectories"]
        except (SafetensorError, KeyError) as exc:
            raise StoredFileDamaged(f"the stored expert set {key} cannot be read ({exc})") from exc
        if stored_format != _FORMAT or params.ndim != 3 or tuple(params.shape[:2]) != (experts, epochs + 1):
            raise StoredFileDamaged(
                f"the stored expert set {key} is not {experts} trajectories of {epochs + 1} snapshots "
                f"(format {stored_format!r}, shape {tuple(params.shape)})"
            )
        return cls(params)


def data_fingerprint(x: torch.Tensor, y: torch.Tensor) -> str:
    """sha256 of the exact training tensors: a subset of a dataset shares its content hash, not this."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(x.detach().cpu().numpy()).tobytes())
    h.update(np.ascontiguousarray(y.detach().cpu().numpy()).tobytes())
    return h.hexdigest()


def expert_key(
    content_hash: str,
    fingerprint: str,
    model: dict,
    config: ExpertConfig,
    schedule: DifficultySchedule | None,
    scores: dict | None,
    seed: int,
) -> str:
    """The store key: every input the trajectories depend on, hashed."""
    payload = {
        "dataset": content_hash,
        "data": fingerprint,
        "model": model,
        "training": asdict(config),
        "schedule": asdict(schedule) if schedule is not None else None,
        "scores": scores,
        "seed": seed,
    }
    return "experts-" + hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:32]


def snapshot(model: torch.nn.Module) -> torch.Tensor:
    # A fresh copy, never a view of the live weights: `.detach().cpu()` on a CPU tensor returns the
    # same storage, so every "snapshot" would silently become the final weights.
    return parameters_to_vector(model.parameters()).detach().clone().cpu()


def train_expert(
    model: torch.nn.Module,
    real: RealData,
    config: ExpertConfig,
    generator: torch.Generator,
    *,
    schedule: DifficultySchedule | None = None,
    easy_to_hard: np.ndarray | None = None,
    augment_strategy: str | None = None,
    tracker: Tracker | None = None,
) -> torch.Tensor:
    """Train one expert and return its (epochs + 1, P) trajectory; no test passes are spent inside."""
    tracker = tracker or Tracker()
    device = real.x.device
    model.to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    augment = DSAugment(augment_strategy) if config.augment and augment_strategy else None
    snapshots = [snapshot(model)]
    all_idx = np.arange(len(real.y))
    for epoch in range(1, config.epochs + 1):
        pool = schedule.indices(easy_to_hard, epoch) if schedule is not None and easy_to_hard is not None else all_idx
        pool_t = torch.from_numpy(pool).to(device)
        for batch in iterate_minibatches(len(pool_t), config.batch_size, generator):
            idx = pool_t[batch.to(device)]
            xb, yb = real.x[idx], real.y[idx]
            if augment is not None:
                xb = augment(xb, generator)
            loss = per_sample_loss(model(xb), yb).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        snapshots.append(snapshot(model))
        tracker.report("experts", epoch / config.epochs, f"epoch {epoch}/{config.epochs}", loss=float(loss.detach()))
    return torch.stack(snapshots)


def obtain_experts(
    store: ExpertStore | None,
    key: str,
    real: RealData,
    new_model: ModelFactory,
    config: ExpertConfig,
    *,
    seed: int,
    schedule: DifficultySchedule | None = None,
    easy_to_hard: np.ndarray | None = None,
    augment_strategy: str | None = None,
    tracker: Tracker | None = None,
    scratch: Path | None = None,
) -> tuple[Trajectories, bool]:
    """The experts for ``key``: loaded from ``store`` when present, else trained and stored.

    Returns:
        the trajectories and whether they were reused (True) or trained now (False).
    """
    tracker = tracker or Tracker()

    def train(local: Path) -> Trajectories:
        trajectories = []
        for e in range(config.num_experts):
            torch.manual_seed(seed + e)  # initial weights of expert e
            generator = torch.Generator().manual_seed(seed + e)
            span = tracker.span(e / config.num_experts, (e + 1) / config.num_experts)
            trajectories.append(
                train_expert(new_model(), real, config, generator, schedule=schedule, easy_to_hard=easy_to_hard,
                             augment_strategy=augment_strategy, tracker=span)
            )
        return Trajectories(torch.stack(trajectories)).save(local)

    def load(local: Path) -> Trajectories:
        loaded = Trajectories.load(local, key, config.num_experts, config.epochs)
        tracker.report("experts", 1.0, "reused stored experts")
        return loaded

    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        local = Path(tmp) / "experts.safetensors"
        if store is None:
            return train(local), False
        return reuse_or_compute(store, key, local, load, train, tracker, "experts")
