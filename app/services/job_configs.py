"""The one mapping from a job spec (``app.schemas.jobs``, what a user POSTs) to the engine config it runs: the
worker runs what it returns. The spec's option models use the engine's field names (their defaults, bounds and
help are read from the configs), so only what the API names or shapes differently is written out here."""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from app.schemas.jobs import (
    GROUP_OPTIONS,
    DistillJobSpec,
    PruneJobCreate,
    PruneThenDistillJobCreate,
    SweepJobCreate,
)
from engine.distill.families import options_from
from engine.distill.registry import get_method
from engine.distill.schedule import DifficultySchedule
from engine.pipeline.distill_config import (
    DistillConfig,
    DistillEvalConfig,
    InitConfig,
    PrunedStartConfig,
)
from engine.pipeline.prune_config import EvalConfig, ProxyConfig, PruneConfig
from engine.pipeline.sweep_config import SweepConfig
from engine.select.config import SelectionConfig

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

C = TypeVar("C", bound="DataclassInstance")


def from_options(config: type[C], spec: BaseModel, /, **overrides: Any) -> C:
    """``config`` built from the options of the same names, then ``overrides`` (what the API names or
    shapes differently). The API's option models use the engine's field names, so a new engine field the
    API exposes needs nothing here."""
    names = {f.name for f in fields(config)} - overrides.keys()
    # JSON values: enum members become the names the engine registers.
    return config(**spec.model_dump(mode="json", include=names), **overrides)


def prune_config(spec: PruneJobCreate | SweepJobCreate) -> PruneConfig:
    """A prune job's config; for a sweep, the base every point shares (its method and keep are the first point's)."""
    if isinstance(spec, SweepJobCreate):
        keep: float | int = spec.keep_fractions[0]
        overrides: dict[str, Any] = {"method": spec.methods[0].value}
    else:
        # A count stays an int: resolve_count reads the float 1.0 as the fraction "everything".
        keep = spec.keep_fraction if spec.keep_fraction is not None else spec.keep_count or 0
        overrides = {}
    return from_options(
        PruneConfig,
        spec,
        # The selection fields are the spec's own; a window stays the tuple that JSON would make a list.
        selection=from_options(SelectionConfig, spec, keep=keep, window=spec.window),
        proxy=from_options(ProxyConfig, spec.proxy),
        evaluation=None if spec.evaluation is None else from_options(EvalConfig, spec.evaluation),
        **overrides,
    )


def sweep_config(spec: SweepJobCreate) -> SweepConfig:
    return SweepConfig(methods=[m.value for m in spec.methods], keeps=list(spec.keep_fractions), base=prune_config(spec))


def distill_config(spec: DistillJobSpec) -> DistillConfig:
    proxy = from_options(ProxyConfig, spec.proxy)
    if isinstance(spec, PruneThenDistillJobCreate):
        selection = from_options(PrunedStartConfig, spec, window=spec.window)
        init = InitConfig(mode="pruned", prune_method=spec.prune_method.value, selection=selection, proxy=proxy)
    else:
        init = InitConfig(mode=spec.init, proxy=proxy)
    # The spec carries only the options of the method's own family (the schema fills them in); the
    # others keep the engine's defaults. A job-level lr_images reaches every group with pixels to learn.
    fixed: dict[str, float] = {} if spec.lr_images is None else {"lr_images": spec.lr_images}
    given = {name: options.model_dump(mode="json") for name in GROUP_OPTIONS if (options := getattr(spec, name))}
    options = options_from(given, get_method(spec.method.value).family, **fixed)
    # The scheduler's options left out are PAD's for this expert run (an explicit null removal_epoch is kept).
    schedule = None if spec.schedule is None else DifficultySchedule.for_experts(
        options["experts"].epochs, **spec.schedule.model_dump(exclude_unset=True))
    return from_options(
        DistillConfig,
        spec,
        init=init,
        options=options,
        schedule=schedule,
        evaluation=None if spec.evaluation is None else from_options(DistillEvalConfig, spec.evaluation),
    )
