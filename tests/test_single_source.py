"""The engine's configs are the one source of every default, bound and choice: the API's schemas and the
CLI's options must offer exactly what the engine declares, so that changing a default there is a
one-line change every interface follows, and changing it anywhere else fails here."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, get_args

import pytest
import typer.main
from pydantic import BaseModel, TypeAdapter

from app.core.config import Settings
from app.schemas.jobs import (
    GROUP_OPTIONS,
    JOB_KINDS,
    DistillEvaluationOptions,
    DistillJobCreate,
    EvaluationOptions,
    JobCreate,
    ProxyOptions,
    PruneJobCreate,
    PruneThenDistillJobCreate,
    ScheduleOptions,
    SweepJobCreate,
)
from cli.main import app as cli_app
from engine.config_fields import offered, setting_of
from engine.data.split import TEST_FRACTION
from engine.device import DevicePreference
from engine.distill.experts_config import ExpertConfig
from engine.distill.families import OptionGroup, option_groups
from engine.distill.schedule import DifficultySchedule
from engine.distill.start import InitMode
from engine.distill.trajectory_config import TrajectoryConfig
from engine.pipeline.distill_config import (
    DistillConfig,
    DistillEvalConfig,
    DistillKind,
    InitConfig,
    PrunedStartConfig,
)
from engine.pipeline.prune_config import EvalConfig, ProxyConfig, PruneConfig, PruneKind
from engine.pipeline.sweep_config import SweepConfig, SweepKind
from engine.select.config import RANKING_MODES, SELECTION_MODES, SelectionConfig

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

# API models and the engine configs whose fields they expose under the same names.
SAME_NAMES: list[tuple[type[BaseModel], type[DataclassInstance]]] = [
    (ProxyOptions, ProxyConfig),
    (EvaluationOptions, EvalConfig),
    (DistillEvaluationOptions, DistillEvalConfig),
    (PruneJobCreate, SelectionConfig),
    (PruneJobCreate, PruneConfig),
    (SweepJobCreate, SelectionConfig),
    (SweepJobCreate, PruneConfig),
    (DistillJobCreate, DistillConfig),
    (PruneThenDistillJobCreate, DistillConfig),
    (PruneThenDistillJobCreate, PrunedStartConfig),
]
# The API's fields named otherwise (or alike with another meaning, as an init mode is not a selection mode).
RENAMED: list[tuple[type[BaseModel], str, type[DataclassInstance], str]] = [
    (DistillJobCreate, "init", InitConfig, "mode"),
    (PruneThenDistillJobCreate, "prune_method", InitConfig, "prune_method"),
]
# Every CLI option with a default of its own, and the engine field it sets.
CLI_OPTIONS: dict[str, dict[str, tuple[type[DataclassInstance], str]]] = {
    "prune": {
        "method": (PruneConfig, "method"),
        "keep": (SelectionConfig, "keep"),
        "class_balanced": (SelectionConfig, "class_balanced"),
        "allocation": (SelectionConfig, "allocation"),
        "mode": (SelectionConfig, "mode"),
        "ccs_cutoff": (SelectionConfig, "ccs_hard_cutoff"),
        "weights": (SelectionConfig, "weights"),
        "proxy_model": (ProxyConfig, "model"),
        "proxy_width": (ProxyConfig, "width"),
        "epochs": (ProxyConfig, "epochs"),
        "batch_size": (ProxyConfig, "batch_size"),
        "lr": (ProxyConfig, "lr"),
        "eval_seeds": (EvalConfig, "seeds"),
        "eval_epochs": (EvalConfig, "epochs"),
        "eval_model": (EvalConfig, "model"),
        "eval_width": (EvalConfig, "width"),
        "compare_random": (EvalConfig, "compare_random"),
        "full_data": (EvalConfig, "full_data"),
        "seed": (PruneConfig, "seed"),
        "device": (PruneConfig, "device"),
    },
    "distill": {
        "method": (DistillConfig, "method"),
        "ipc": (DistillConfig, "ipc"),
        "iterations": (DistillConfig, "iterations"),
        "init": (InitConfig, "mode"),
        "prune_method": (InitConfig, "prune_method"),
        "prune_mode": (PrunedStartConfig, "mode"),
        "proxy_epochs": (ProxyConfig, "epochs"),
        "model": (DistillConfig, "model"),
        "width": (DistillConfig, "width"),
        "dsa": (DistillConfig, "dsa"),
        "zca": (DistillConfig, "zca"),
        "soft_labels": (DistillConfig, "soft_labels"),
        "fiem_ratio": (DistillConfig, "fiem_ratio"),
        "fiex_ratio": (DistillConfig, "fiex_ratio"),
        "eval_seeds": (DistillEvalConfig, "seeds"),
        "eval_epochs": (DistillEvalConfig, "epochs"),
        "eval_width": (DistillEvalConfig, "width"),
        "compare_random": (DistillEvalConfig, "compare_random"),
        "compare_coreset": (DistillEvalConfig, "compare_coreset"),
        "full_data": (DistillEvalConfig, "full_data"),
        "checkpoint_every": (DistillConfig, "checkpoint_every"),
        "seed": (DistillConfig, "seed"),
        "device": (DistillConfig, "device"),
    },
}
BOUNDS = ("ge", "gt", "le", "lt")
# CLI options that set no engine config field (input, output, the dataset loader) or have no default.
CLI_ONLY = {
    "data", "out", "window", "score_param", "cross_arch", "test_fraction", "experts_dir", "proxy_runs", "lr_images", "spec",
    # FIEX's scheduler: unset is the method's (PAD Table 10 scaled to the expert run), not a field's default.
    "schedule_initial_ratio", "schedule_addition_end", "schedule_removal_epoch", "schedule_removal_fraction",
}


def _api_default(model: type[BaseModel], name: str) -> Any:
    return model.model_fields[name].get_default(call_default_factory=True, validated_data={})


def _plain(value: Any) -> Any:
    """An enum member (the API's and the CLI's choices) as the engine's name for it; a repeatable option's
    one default value as that value."""
    if isinstance(value, list | tuple) and len(value) == 1:
        value = value[0]
    return value.value if isinstance(value, Enum) else value


def _pairs() -> list[tuple[type[BaseModel], str, type[DataclassInstance], str]]:
    """Every API field with a default and the engine field it stands for."""
    renamed = {(model, name) for model, name, _, _ in RENAMED}
    pairs = list(RENAMED)
    for model, config in SAME_NAMES:
        for f in fields(config):
            api = model.model_fields.get(f.name)
            # Nested configs are compared through their own option models; a required field has no default.
            if api is None or api.is_required() or is_dataclass(setting_of(config, f.name).default):
                continue
            if (model, f.name) not in renamed:
                pairs.append((model, f.name, config, f.name))
    return pairs


def _declares_more(config: type[DataclassInstance], field: str) -> bool:
    declared = setting_of(config, field)
    return declared.help is not None or any(getattr(declared, bound) is not None for bound in BOUNDS)


PAIRS = [pytest.param(*pair, id=f"{pair[0].__name__}.{pair[1]}") for pair in _pairs()]


@pytest.mark.parametrize(("model", "name", "config", "field"), PAIRS)
def test_api_defaults_are_the_engines(
    model: type[BaseModel], name: str, config: type[DataclassInstance], field: str
) -> None:
    assert _plain(_api_default(model, name)) == setting_of(config, field).default


@pytest.mark.parametrize(("model", "name", "config", "field"), [p for p in PAIRS if _declares_more(*p.values[2:])])
def test_api_bounds_and_help_are_the_engines(
    model: type[BaseModel], name: str, config: type[DataclassInstance], field: str
) -> None:
    declared, api = setting_of(config, field), model.model_fields[name]
    offered = {bound: getattr(m, bound) for m in api.metadata for bound in BOUNDS if hasattr(m, bound)}
    assert offered == {bound: getattr(declared, bound) for bound in BOUNDS if getattr(declared, bound) is not None}
    assert api.description == declared.help


def _cli_params(command: str) -> dict[str, Any]:
    return {p.name: p for p in typer.main.get_command(cli_app).commands[command].params}  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", sorted(CLI_OPTIONS))
def test_cli_defaults_are_the_engines(command: str) -> None:
    params = {name: p for name, p in _cli_params(command).items() if "__" not in name}  # not the groups' options
    assert set(params) == set(CLI_OPTIONS[command]) | (CLI_ONLY & set(params)), "an option is missing from CLI_OPTIONS"
    for name, (config, field) in CLI_OPTIONS[command].items():
        assert _plain(params[name].default) == setting_of(config, field).default, f"--{name.replace('_', '-')}"


def _literal_choices(model: type[BaseModel], name: str) -> tuple[str, ...]:
    return get_args(model.model_fields[name].annotation)


def _cli_choices(command: str, name: str) -> tuple[str, ...]:
    # The option's default is a member of the enum typer offers as its choices.
    return tuple(member.value for member in type(_cli_params(command)[name].default))


def test_selection_modes_are_the_engines() -> None:
    assert _literal_choices(PruneJobCreate, "mode") == SELECTION_MODES
    assert _cli_choices("prune", "mode") == SELECTION_MODES
    # A pruned start reads only each class's ranking.
    assert _literal_choices(PruneThenDistillJobCreate, "mode") == RANKING_MODES
    assert _cli_choices("distill", "prune_mode") == RANKING_MODES


def test_init_modes_are_the_engines() -> None:
    assert _cli_choices("distill", "init") == get_args(InitMode)
    # prune_then_distill is the "pruned" start; a distill job offers every other one.
    assert _literal_choices(DistillJobCreate, "init") == tuple(m for m in get_args(InitMode) if m != "pruned")


def test_the_held_out_fraction_and_devices_are_the_engines() -> None:
    # app/core/config.py states the fraction itself, so that loading settings does not import the engine.
    assert Settings.model_fields["dataset_test_fraction"].default == TEST_FRACTION
    for command in ("prune", "distill"):
        assert _cli_params(command)["test_fraction"].default == TEST_FRACTION
    assert _literal_choices(PruneJobCreate, "device") == get_args(DevicePreference)
    assert _literal_choices(DistillJobCreate, "device") == get_args(DevicePreference)


def test_job_kinds_are_the_engines() -> None:
    engine_kinds = {*get_args(PruneKind), *get_args(SweepKind), *get_args(DistillKind)}
    assert JOB_KINDS == engine_kinds
    assert set(TypeAdapter(JobCreate).json_schema()["discriminator"]["mapping"]) == engine_kinds
    assert {PruneConfig().kind, SweepConfig().kind, DistillConfig().kind} <= engine_kinds


def test_a_sweep_s_default_scores_and_keeps_are_the_engines() -> None:
    spec = SweepJobCreate.model_validate({"kind": "prune_sweep", "dataset_id": "ds_x"})
    assert [m.value for m in spec.methods] == SweepConfig().methods and spec.keep_fractions == SweepConfig().keeps


GROUPS = [pytest.param(name, group, id=name) for name, group in option_groups().items()]


@pytest.mark.parametrize(("name", "group"), GROUPS)
def test_every_option_group_is_offered_as_declared(name: str, group: OptionGroup) -> None:
    """A family's options are generated from its config: the API's model and the CLI's ``--<group>-<option>``
    offer exactly the fields declared with ``setting``, with their defaults, bounds and help."""
    declared = offered(group.config_type())
    api = GROUP_OPTIONS[name].model_fields
    assert list(api) == [option.name for option in declared]
    cli = {p.opts[0]: p for p in _cli_params("distill").values() if p.name.startswith(f"{name}__")}
    assert list(cli) == [f"--{name}-{option.name}".replace("_", "-") for option in declared]
    for option in declared:
        field = api[option.name]
        assert field.default == option.setting.default and field.description == option.setting.help
        assert {bound: getattr(m, bound) for m in field.metadata for bound in BOUNDS if hasattr(m, bound)} == option.setting.bounds()
        flag = cli[f"--{name}-{option.name}".replace("_", "-")]
        assert flag.default is None  # unset: the config's default, which the help states
        assert option.setting.help is None or option.setting.help[1:] in flag.help


def test_the_trajectory_group_offers_its_engine_fields_under_the_api_s_names() -> None:
    # Clients name the student's initial learning rate ``lr`` and the number of experts ``count``.
    assert {o.name: o.field for o in offered(TrajectoryConfig) if o.name != o.field} == {"lr": "lr_init"}
    assert {o.name: o.field for o in offered(ExpertConfig) if o.name != o.field} == {"count": "num_experts"}


def test_the_schedule_options_are_the_engines() -> None:
    # Left out, an option is PAD's for the expert run (DifficultySchedule.for_experts): every API default is unset.
    api = ScheduleOptions.model_fields
    assert list(api) == [option.name for option in offered(DifficultySchedule)]
    for option in offered(DifficultySchedule):
        field = api[option.name]
        assert field.default is None and field.description == option.setting.help
        assert {bound: getattr(m, bound) for m in field.metadata for bound in BOUNDS if hasattr(m, bound)} == option.setting.bounds()
