"""Distillation families: what a method matches (gradients, embedding distributions, training trajectories).
Each family names the ``DistillConfig`` field that holds its settings and the function that builds its matcher,
and says whether it trains experts; the pipeline dispatches through this registry, and a method's registry entry
(``engine.distill.registry``) names its family. Adding a family is its matcher module (with a ``build`` function
of the signature below) plus a line here. Light: the builder is imported when a job runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.registry import Registry


@dataclass(frozen=True)
class MatchSettings:
    """What the pipeline resolves for every family before building a matcher (the method's defaults filled in)."""

    dsa_groups: tuple[str, ...] | None
    fiem_ratio: float
    min_start_epoch: int
    max_start_epoch: int
    max_start_epoch_final: int | None
    widen_iterations: int


@dataclass(frozen=True)
class DistillFamily:
    """Attributes:
        name: the family a method names (``gradient``).
        description: one line for the docs.
        config_field: the ``DistillConfig`` field with the family's settings (``dc``, ``dm``, ``trajectory``).
        build: ``"module:function"`` taking ``(family_config, settings: MatchSettings, real, new_model, experts)``
            and returning the family's :class:`~engine.distill.base.Matcher`.
        uses_experts: matches expert trajectories, which the pipeline trains (or reuses) first; only such a
            family learns soft labels (from expert logits) or orders the experts' data (PAD's FIEX scheduler).
        embeds: matches embeddings, so FIEM needs a model whose layers form one stack (``ModelSpec.layer_stack``).
    """

    name: str
    description: str
    config_field: str
    build: str
    uses_experts: bool = False
    embeds: bool = False


FAMILIES: Registry[DistillFamily] = Registry("distillation family")

FAMILIES.register(DistillFamily(
    "gradient", "match the gradients a network takes on real and synthetic batches (DC, DSA)", "dc",
    "engine.distill.gradient:build"))
FAMILIES.register(DistillFamily(
    "distribution", "match the mean embeddings of real and synthetic images under random networks (DM)", "dm",
    "engine.distill.distribution:build", embeds=True))
FAMILIES.register(DistillFamily(
    "trajectory", "match the parameter trajectories of experts trained on real data (MTT, DATM-style, PAD)",
    "trajectory", "engine.distill.trajectory:build", uses_experts=True))
