"""Typed configuration of a sweep job (``engine.pipeline.sweep`` runs it) and the names of its points and rows:
light, like ``prune_config``, so the API and the CLI read them without torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from engine.pipeline.prune_config import PruneConfig

SweepKind = Literal["prune_sweep"]
MAX_POINTS = 100  # methods x keeps: a sweep is exploration, not a grid search over thousands of cells


@dataclass
class SweepConfig:
    """Every (method, keep) pair of ``methods`` x ``keeps``; everything else (selection policy, proxy,
    evaluation, seed) is ``base``'s, whose own method and keep are replaced per point."""

    methods: list[str] = field(default_factory=lambda: [PruneConfig.method])
    keeps: list[float] = field(default_factory=lambda: [0.1, 0.3, 0.5])
    base: PruneConfig = field(default_factory=PruneConfig)

    @property
    def kind(self) -> SweepKind:
        return "prune_sweep"

    def points(self) -> list[PruneConfig]:
        return [
            replace(self.base, method=m, selection=replace(self.base.selection, keep=k))
            for m in self.methods
            for k in self.keeps
        ]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def point_name(method: str, keep: float) -> str:
    return f"{method}@{keep:g}"


def _keep_text(keep: float) -> str:
    """A keep as a person reads it: a fraction as a percentage, a count as samples."""
    return f"{100 * keep:g}%" if keep <= 1 else f"{keep:g} samples"


def row_label(row: dict[str, Any]) -> str:
    """Every score that kept a row's subset, by keep: ``el2n, forgetting @ 10%``."""
    by_keep: dict[float, list[str]] = {}
    for method, keep in zip(row["methods"], row["keeps"], strict=True):
        by_keep.setdefault(keep, []).append(method)
    return "; ".join(f"{', '.join(methods)} @ {_keep_text(keep)}" for keep, methods in by_keep.items())
