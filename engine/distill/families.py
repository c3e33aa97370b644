"""Distillation families: what a method matches (gradients, embedding distributions, training trajectories).

Each family names its option groups (each a light config dataclass whose fields declared with ``setting`` are
offered by the API and the CLI, generated from the declaration), the function that builds its matcher, and
whether it trains experts. The pipeline dispatches through this registry, a method's registry entry
(``engine.distill.registry``) names its family, and ``DistillConfig.options`` holds one config per registered
group. Adding a family is its matcher module (a ``build`` function of the signature below), its config
dataclass and a registration here or in a plugin (``engine.plugins``). Light: nothing heavy is imported until a
job runs.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from engine.config_fields import offered
from engine.registry import Registry, load

if TYPE_CHECKING:
    from engine.distill.schedule import DifficultySchedule
    from engine.distill.start import StartMode


@dataclass(frozen=True)
class OptionGroup:
    """Attributes:
        name: the group's key in ``DistillConfig.options`` and its field in a job spec (``trajectory``); CLI
            options are ``--<name>-<option>``.
        config: ``"module:Class"``, a light dataclass whose ``setting`` fields are the group's options.
    """

    name: str
    config: str

    def config_type(self) -> type[Any]:
        found: type[Any] = load(self.config)
        return found


@dataclass(frozen=True)
class DistillFamily:
    """Attributes:
        name: the family a method names (``gradient``).
        description: one line for the docs.
        options: the family's option groups; the first is what its matcher reads and ``build`` receives, the
            others are the pipeline's (``experts``: how the experts it matches are trained).
        build: ``"module:function"`` taking ``(group_config, settings: MatchSettings, real, new_model, experts)``
            and returning the family's :class:`~engine.distill.base.Matcher`.
        uses_experts: matches expert trajectories, which the pipeline trains (or reuses) first from the
            ``experts`` group; only such a family learns soft labels (from expert logits) or orders the experts'
            data (PAD's FIEX scheduler).
        embeds: matches embeddings, so FIEM needs a model whose layers form one stack (``ModelSpec.layer_stack``).
        check: ``"module:function"`` taking the family's option configs by group name and returning the
            :class:`OptionProblem` s of combinations no single bound rules out; the API and the CLI both ask it.
    """

    name: str
    description: str
    options: tuple[OptionGroup, ...]
    build: str
    uses_experts: bool = False
    embeds: bool = False
    check: str | None = None

    def problems(self, options: dict[str, Any]) -> list[OptionProblem]:
        if self.check is None:
            return []
        found: list[OptionProblem] = load(self.check)({group.name: options[group.name] for group in self.options})
        return found


@dataclass(frozen=True)
class OptionProblem:
    """Why a family's options cannot run together: ``field`` is ``<group>.<option>`` as the API names it."""

    field: str
    message: str


@dataclass
class MatchSettings:
    """A job's settings after the method's defaults are filled in: what the report records as used, what the
    pipeline acts on, and what every family's ``build`` receives beside its own options."""

    dsa_groups: tuple[str, ...] | None
    soft_labels: bool
    fiem_ratio: float
    schedule: DifficultySchedule | None
    fiex_drops: str | None  # DC/DM's FIEX: which end of each class's EL2N order is left out of matching
    min_start_epoch: int
    max_start_epoch: int
    max_start_epoch_final: int | None
    widen_iterations: int
    zca: bool
    start: StartMode  # where the synthetic set starts (``init: auto`` resolved)
    start_reason: str


FAMILIES: Registry[DistillFamily] = Registry("distillation family")


def options_with(**configs: Any) -> dict[str, Any]:
    """Every group's default config, with ``configs`` (by group name) in place of those named."""
    if unknown := configs.keys() - option_groups().keys():
        raise ValueError(f"no option group {', '.join(sorted(unknown))}; groups: {', '.join(option_groups())}")
    return {**options_from(), **configs}


def option_groups() -> dict[str, OptionGroup]:
    """Every registered family's option groups by name (a group two families share is listed once)."""
    return {group.name: group for family in FAMILIES for group in family.options}


def families_using(group: str) -> list[str]:
    return [family.name for family in FAMILIES if any(g.name == group for g in family.options)]


def group_config(group: str, values: dict[str, Any], **fixed: Any) -> Any:
    """Group ``group``'s config from option ``values`` under their offered names (as a job spec or the CLI gives
    them; those left out keep their defaults), with ``fixed`` set on the config's fields of those names (a
    job-level ``lr_images`` reaches every group that has one)."""
    config = option_groups()[group].config_type()
    field_of = {option.name: option.field for option in offered(config)}
    own = {name: value for name, value in fixed.items() if name in {f.name for f in fields(config)}}
    return config(**{field_of[name]: value for name, value in values.items()}, **own)


def options_from(given: dict[str, dict[str, Any]] | None = None, family: str | None = None, **fixed: Any) -> dict[str, Any]:
    """A config of every registered option group (``DistillConfig.options``) from the option values ``given`` by
    group (the defaults where none are), with ``fixed`` as in :func:`group_config` on ``family``'s own groups
    (a job-level ``lr_images`` reaches the groups its method matches with, and the report shows no other)."""
    own = {group.name for group in FAMILIES.get(family).options} if family is not None else set()
    given = given or {}
    return {name: group_config(name, given.get(name, {}), **(fixed if name in own else {})) for name in option_groups()}


FAMILIES.register(DistillFamily(
    "gradient", "match the gradients a network takes on real and synthetic batches (DC, DSA)",
    (OptionGroup("gradient", "engine.distill.gradient_config:GradientConfig"),), "engine.distill.gradient:build"))
FAMILIES.register(DistillFamily(
    "distribution", "match the mean embeddings of real and synthetic images under random networks (DM)",
    (OptionGroup("distribution", "engine.distill.distribution_config:DistributionConfig"),),
    "engine.distill.distribution:build", embeds=True))
FAMILIES.register(DistillFamily(
    "trajectory", "match the parameter trajectories of experts trained on real data (MTT, DATM-style, PAD)",
    (OptionGroup("trajectory", "engine.distill.trajectory_config:TrajectoryConfig"),
     OptionGroup("experts", "engine.distill.experts_config:ExpertConfig")),
    "engine.distill.trajectory:build", uses_experts=True, check="engine.distill.trajectory_config:check_options"))
