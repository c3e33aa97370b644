"""Job specs (a discriminated union on ``kind``), job records, their events and artifacts.

Enumerations and defaults come from the engine's registries and configs, so the API accepts exactly
what the engine runs. A new job kind is one more ``*JobCreate`` model added to the ``JobCreate`` union.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.json_schema import WithJsonSchema
from pydantic_core import InitErrorDetails, PydanticCustomError

from app.models import Job, JobStatus
from app.schemas.common import ObjectId, Page, StrictModel
from engine.config_fields import Offered, help_of, offered, setting_of
from engine.device import DevicePreference
from engine.distill.distribution_config import FIEM_NEEDS, has_layer_stack
from engine.distill.families import (
    FAMILIES,
    OptionGroup,
    OptionProblem,
    families_using,
    group_config,
    option_groups,
)
from engine.distill.registry import get_method, methods_using
from engine.distill.registry import method_names as distill_method_names
from engine.distill.schedule import FIEX_NEEDS, DifficultySchedule
from engine.distill.start import UnprunedInitMode
from engine.models.registry import model_names
from engine.pipeline.artifacts import describe_artifact
from engine.pipeline.distill_config import (
    DistillConfig,
    DistillEvalConfig,
    DistillKind,
    InitConfig,
    PlainDistillKind,
    PrunedStartConfig,
    PruneThenDistillKind,
)
from engine.pipeline.prune_config import (
    EvalConfig,
    ProxyConfig,
    PruneConfig,
    PruneKind,
    prune_method_names,
)
from engine.pipeline.sweep_config import SweepConfig, SweepKind
from engine.scores import ParamProblem, check_score_params, describe_params, score_names
from engine.select.auto import check_method_params
from engine.select.config import Allocation, RankingMode, SelectionConfig, SelectionMode

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

PruneMethod = enum.StrEnum("PruneMethod", {name: name for name in prune_method_names()})  # type: ignore[misc]
# A score by name, where Condense does not choose one (prune-then-distill's pruned start).
ScoreName = enum.StrEnum("ScoreName", {name: name for name in score_names()})  # type: ignore[misc]
DistillMethod = enum.StrEnum("DistillMethod", {name: name for name in distill_method_names()})  # type: ignore[misc]
ModelName = enum.StrEnum("ModelName", {name: name for name in model_names()})  # type: ignore[misc]


def engine_field(config: type[DataclassInstance], name: str, **extra: Any) -> Any:
    """A field with the default, bounds and help of the engine's ``config.name``; ``extra`` is what only
    the API adds (``validate_default``)."""
    declared = setting_of(config, name)
    return Field(declared.default, description=declared.help, **declared.bounds(), **extra)


def _window_matches_mode(window: tuple[float, float] | None, info: ValidationInfo) -> tuple[float, float] | None:
    """A field validator (so the error names ``window``); ``mode`` is declared before ``window``."""
    mode = info.data.get("mode")
    if mode is None:  # mode itself was invalid and is reported on its own
        return window
    if mode == "window":
        if window is None:
            raise ValueError("mode 'window' needs window [lo, hi]")
        lo, hi = window
        if not 0 <= lo < hi <= 1:
            raise ValueError("window must satisfy 0 <= lo < hi <= 1")
    elif window is not None:
        raise ValueError("window is only used with mode 'window'")
    return window


# Values are checked against the method's parameter specs (_refuse), which name each key once, escaped
# and cut; pydantic's errors for a union of scalar types would repeat a key (which may be megabytes
# long or carry a NUL) once per member of the union.
ScoreParamValue = Annotated[Any, WithJsonSchema({"type": "number"})]
SCORE_PARAMS_DOC = "the method's parameters (for tdds e.g. {\"window\": 5}):\n" + "\n".join(
    f"- {line}" for line in describe_params()
)


def _refuse(model: BaseModel, problems: Sequence[ParamProblem | OptionProblem]) -> None:
    """A 422 naming each field at fault (``score_params.<key>``, ``proxy.epochs``), as a field validator's would."""
    if problems:
        raise ValidationError.from_exception_data(
            type(model).__name__,
            [
                InitErrorDetails(
                    type=PydanticCustomError("value_error", "{message}", {"message": p.message}),
                    loc=tuple(p.field.split(".")),
                    input=None,  # the value may be megabytes long; the field and message say what is wrong
                )
                for p in problems
            ],
        )


class ProxyOptions(StrictModel):
    """The short proxy training run whose dynamics give the scores."""

    model: ModelName = ModelName(ProxyConfig.model)
    width: int = engine_field(ProxyConfig, "width")
    epochs: int = engine_field(ProxyConfig, "epochs")
    batch_size: int = engine_field(ProxyConfig, "batch_size")
    lr: float = engine_field(ProxyConfig, "lr")


class EvaluationOptions(StrictModel):
    """Fresh models trained on the subset (and, for comparison, random and full data) to measure it."""

    seeds: int = engine_field(EvalConfig, "seeds")
    epochs: int = engine_field(EvalConfig, "epochs")
    model: ModelName = ModelName(EvalConfig.model)
    width: int = engine_field(EvalConfig, "width")
    compare_random: bool = engine_field(EvalConfig, "compare_random")
    full_data: bool = engine_field(EvalConfig, "full_data")
    archs: list[ModelName] = Field(
        default_factory=list, max_length=8, description="extra architectures to test transfer"
    )


class _SelectionJobBase(StrictModel):
    """What ``prune`` and ``prune_sweep`` share: the data, the selection policy, the proxy and the evaluation."""

    kind: PruneKind | SweepKind  # narrowed by each kind; declared here so it comes first
    dataset_id: ObjectId
    mode: SelectionMode = engine_field(SelectionConfig, "mode")
    window: tuple[float, float] | None = engine_field(SelectionConfig, "window", validate_default=True)
    class_balanced: bool | None = engine_field(SelectionConfig, "class_balanced")
    allocation: Allocation = engine_field(SelectionConfig, "allocation")
    ccs_hard_cutoff: float = engine_field(SelectionConfig, "ccs_hard_cutoff")
    weights: bool = engine_field(SelectionConfig, "weights")
    proxy: ProxyOptions = Field(default_factory=ProxyOptions)
    evaluation: EvaluationOptions | None = Field(default_factory=EvaluationOptions)
    seed: int = engine_field(PruneConfig, "seed")
    device: DevicePreference = Field(PruneConfig.device)

    _check_window = field_validator("window")(_window_matches_mode)


class PruneJobCreate(_SelectionJobBase):
    """Score every training sample, keep a subset, and evaluate it."""

    kind: PruneKind
    method: PruneMethod = Field(PruneMethod(PruneConfig.method), description=help_of(PruneConfig, "method"))
    keep_fraction: float | None = Field(None, gt=0, lt=1, description="share of the training set to keep")
    keep_count: int | None = Field(None, ge=1, description="number of training samples to keep")
    score_params: dict[str, ScoreParamValue] = Field(
        default_factory=dict, max_length=32, description=SCORE_PARAMS_DOC
    )

    @model_validator(mode="after")
    def _check_keep(self) -> PruneJobCreate:
        if (self.keep_fraction is None) == (self.keep_count is None):
            raise ValueError("give exactly one of keep_fraction and keep_count")
        return self

    @model_validator(mode="after")
    def _check_score_params(self) -> PruneJobCreate:
        _refuse(self, check_method_params(self.method.value, self.score_params, self.proxy.epochs))
        return self


def _unique(values: list[Any]) -> list[Any]:
    if len(set(values)) != len(values):
        raise ValueError("list each value once")
    return values


class SweepJobCreate(_SelectionJobBase):
    """Several scores x several keep fractions from one proxy run: a table and an accuracy-vs-kept curve,
    each subset against random at the same size, with its verdict and its overlap with the others at its keep.
    Points that keep the same samples are one row, evaluated once. Scores run with their default parameters."""

    kind: SweepKind
    methods: list[PruneMethod] = Field(
        default_factory=lambda: [PruneMethod(m) for m in SweepConfig().methods], min_length=1, max_length=10,
        description="scores to compare",
    )
    keep_fractions: list[Annotated[float, Field(gt=0, lt=1)]] = Field(
        default_factory=lambda: SweepConfig().keeps, min_length=1, max_length=10,
        description="shares of the training set to keep, each compared with a random subset of that size",
    )

    _check_unique = field_validator("methods", "keep_fractions")(_unique)

    @model_validator(mode="after")
    def _check_proxy_run(self) -> SweepJobCreate:
        # Every score runs with its default parameters: the proxy run must be long enough for each.
        _refuse(self, [p for m in self.methods for p in check_method_params(m.value, {}, self.proxy.epochs)])
        return self


class DistillEvaluationOptions(EvaluationOptions):
    """Fresh models trained from scratch on the synthetic set the way the literature evaluates it (DSA
    augmentation, the learned lr where the method learns one, soft-label loss for soft labels), beside a
    random real subset of the same IPC and the full data."""

    # seeds, model, full_data and archs are inherited: DistillEvalConfig takes them from EvalConfig.
    epochs: int = engine_field(DistillEvalConfig, "epochs")
    width: int = engine_field(DistillEvalConfig, "width")
    compare_random: bool = engine_field(DistillEvalConfig, "compare_random")
    compare_coreset: bool = engine_field(DistillEvalConfig, "compare_coreset")
    lr: float = engine_field(DistillEvalConfig, "lr")
    batch_size: int = engine_field(DistillEvalConfig, "batch_size")
    dsa: bool = engine_field(DistillEvalConfig, "dsa")
    full_epochs: int = engine_field(DistillEvalConfig, "full_epochs")


def _offered_field(option: Offered, default: Any) -> tuple[Any, Any]:
    """An engine option as an API field: its type, offered name, bounds and help, and ``default``."""
    return option.type, Field(default, description=option.setting.help, **option.setting.bounds())


# PAD's data scheduler for the experts (FIEX), its options generated from DifficultySchedule's: one left out is
# PAD's for the expert run (DifficultySchedule.for_experts), so each field's default here is "unset".
ScheduleOptions: type[StrictModel] = create_model(
    "ScheduleOptions",
    __base__=StrictModel,
    __doc__="PAD's data scheduler for the experts (FIEX): the easiest initial_ratio first, all data by "
    "addition_end_epoch, the easiest removal_fraction dropped from removal_epoch on; an option left out is PAD's "
    "(Table 10) scaled to the expert run.",
    **{option.name: _offered_field(option, None) for option in offered(DifficultySchedule)},
)


def _options_model(group: OptionGroup) -> type[StrictModel]:
    """The API's model of an option group: a field per option its config declares with ``setting``, under the
    offered name, with the declared default, bounds and help."""
    users = ", ".join(methods_using(group.name))
    fields = {option.name: _offered_field(option, option.setting.default) for option in offered(group.config_type())}
    title = "".join(part.capitalize() for part in group.name.split("_"))
    return create_model(f"{title}Options", __base__=StrictModel, __doc__=f"Options of {group.name} ({users}).", **fields)


def _groups_of(method: str) -> list[str]:
    return [group.name for group in FAMILIES.get(get_method(method).family).options]


# Every registered family's option groups, generated from their configs; a job carries its method's only.
GROUP_OPTIONS: dict[str, type[StrictModel]] = {name: _options_model(group) for name, group in option_groups().items()}


class _DistillJobFields(StrictModel):
    """What ``distill`` and ``prune_then_distill`` share; they differ only in how the synthetic set starts."""

    kind: DistillKind  # narrowed by each kind; declared here so it comes first
    dataset_id: ObjectId
    method: DistillMethod = Field(
        DistillMethod(DistillConfig.method), description="the distillation method (GET /v1/methods lists them)"
    )
    ipc: int = engine_field(DistillConfig, "ipc")
    iterations: int = engine_field(DistillConfig, "iterations")
    model: ModelName = Field(ModelName(DistillConfig.model), description=help_of(DistillConfig, "model"))
    width: int = engine_field(DistillConfig, "width")
    dsa: bool | None = engine_field(DistillConfig, "dsa")
    zca: bool | None = engine_field(DistillConfig, "zca")
    soft_labels: bool | None = engine_field(DistillConfig, "soft_labels")
    fiem_ratio: float | None = engine_field(DistillConfig, "fiem_ratio")
    fiex_ratio: float = engine_field(DistillConfig, "fiex_ratio")
    lr_images: float | None = Field(None, gt=0, le=1e4, description="pixel learning rate; null: the method's")
    schedule: ScheduleOptions | None = Field(
        None, description="trajectory methods: PAD's expert data scheduler (FIEX); null: the method's (on for pad, "
        "PAD Table 10 scaled to the expert epochs)"
    )
    proxy: ProxyOptions = Field(
        default_factory=ProxyOptions, description="proxy run scoring samples (pruned init, PAD's data scheduler)"
    )
    evaluation: DistillEvaluationOptions | None = Field(default_factory=DistillEvaluationOptions)
    checkpoint_every: int = engine_field(DistillConfig, "checkpoint_every")
    seed: int = engine_field(DistillConfig, "seed")
    device: DevicePreference = Field(DistillConfig.device)

    @field_validator("schedule")
    @classmethod
    def _schedule_needs_experts(cls, value: StrictModel | None, info: ValidationInfo) -> StrictModel | None:
        method = info.data.get("method")
        if value is not None and method is not None and not get_method(method).uses_experts:
            raise ValueError("the data scheduler orders the experts' training data: only trajectory methods use it")
        return value

    @field_validator("fiem_ratio")
    @classmethod
    def _fiem_needs_a_layer_stack(cls, value: float | None, info: ValidationInfo) -> float | None:
        method, model = info.data.get("method"), info.data.get("model")
        if value and method is not None and model is not None and FAMILIES.get(get_method(method).family).embeds \
                and not has_layer_stack(model.value):
            raise ValueError(f"{FIEM_NEEDS}; choose a convnet model or leave fiem_ratio out")
        return value

    @field_validator("fiex_ratio")
    @classmethod
    def _fiex_filters_real_images(cls, value: float, info: ValidationInfo) -> float:
        method = info.data.get("method")
        if value and method is not None and get_method(method).uses_experts:
            raise ValueError(f"{FIEX_NEEDS}: leave fiex_ratio out")
        return value

    @field_validator("soft_labels")
    @classmethod
    def _soft_labels_need_experts(cls, value: bool | None, info: ValidationInfo) -> bool | None:
        method = info.data.get("method")
        if value and method is not None and not get_method(method).uses_experts:
            raise ValueError("soft labels are initialised from expert logits: only trajectory methods learn them")
        return value


def _options_of_the_method(value: StrictModel | None, info: ValidationInfo) -> StrictModel | None:
    """A group's options: filled with their defaults for a method of a family that has the group, refused for
    any other method."""
    method = info.data.get("method")
    if method is None:  # reported on its own
        return value
    assert info.field_name is not None
    if info.field_name not in _groups_of(method):
        if value is not None:
            families, users = families_using(info.field_name), ", ".join(methods_using(info.field_name))
            raise ValueError(f"only used by {' and '.join(families)}-matching methods ({users}), not {method}")
        return None
    return value if value is not None else GROUP_OPTIONS[info.field_name]()


def _family_problems(spec: _DistillJobFields) -> _DistillJobFields:
    """Combinations of the family's options that no single bound rules out (the family's own check)."""
    family = FAMILIES.get(get_method(spec.method.value).family)
    given = {group.name: group_config(group.name, getattr(spec, group.name).model_dump()) for group in family.options}
    _refuse(spec, family.problems(given))
    return spec


# Options of the other families are refused; the method's own are filled with their defaults.
_DistillJobBase = create_model(
    "_DistillJobBase",
    __base__=_DistillJobFields,
    __doc__=_DistillJobFields.__doc__,
    __validators__={
        "_options_of_the_method": field_validator(*GROUP_OPTIONS)(_options_of_the_method),
        "_family_problems": model_validator(mode="after")(_family_problems),
    },
    **{name: (model | None, Field(None, validate_default=True)) for name, model in GROUP_OPTIONS.items()},
)


class DistillJobCreate(_DistillJobBase):
    """Learn ``ipc`` synthetic images per class, starting from random real images, noise or the coreset a
    default prune job keeps; ``auto`` picks the coreset where it measured better for the method and IPC."""

    kind: PlainDistillKind
    init: UnprunedInitMode = Field(InitConfig.mode)


class PruneThenDistillJobCreate(_DistillJobBase):
    """Prune-then-distill: a pruning score and selection policy pick the ``ipc`` starting images of each class."""

    kind: PruneThenDistillKind
    prune_method: ScoreName = ScoreName(InitConfig.prune_method)
    mode: RankingMode = engine_field(PrunedStartConfig, "mode")
    window: tuple[float, float] | None = engine_field(PrunedStartConfig, "window", validate_default=True)
    ccs_hard_cutoff: float = engine_field(PrunedStartConfig, "ccs_hard_cutoff")

    @model_validator(mode="before")
    @classmethod
    def _default_window_for_window_mode(cls, data: Any) -> Any:
        # The default window (001 Sec. 4.4) belongs to 'window' mode: another mode without a window has none.
        if isinstance(data, dict) and data.get("mode", "window") != "window" and "window" not in data:
            return {**data, "window": None}
        return data

    _check_window = field_validator("window")(_window_matches_mode)

    @model_validator(mode="after")
    def _check_proxy_run(self) -> PruneThenDistillJobCreate:
        # The pruning score runs with its default parameters: the proxy run must be long enough for them.
        _refuse(self, check_score_params(self.prune_method.value, {}, self.proxy.epochs))
        return self


JobSpec = PruneJobCreate | SweepJobCreate | DistillJobCreate | PruneThenDistillJobCreate
DistillJobSpec = DistillJobCreate | PruneThenDistillJobCreate
JobCreate = Annotated[JobSpec, Field(discriminator="kind")]  # a new kind joins JobSpec
JOB_KINDS = frozenset(kind for spec in get_args(JobSpec) for kind in get_args(spec.model_fields["kind"].annotation))


class JobError(BaseModel):
    type: str = Field(description="machine-readable cause, e.g. 'dataset_invalid', 'timeout', 'lease_expired'")
    message: str


class ArtifactPublic(BaseModel):
    name: str
    size_bytes: int
    sha256: str
    content_type: str
    url: str
    description: str = Field(description="what the file is")


class ArtifactsPublic(BaseModel):
    data: list[ArtifactPublic]
    zip_url: str = Field(description="every artifact in one zip")


class JobPublic(BaseModel):
    id: str
    kind: str
    status: JobStatus
    stage: str | None
    progress: float = Field(ge=0, le=1)
    dataset_id: str | None
    spec: dict[str, Any]
    attempt: int
    max_attempts: int
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: JobError | None
    metrics: dict[str, Any] | None = Field(description="headline numbers from the report once the job succeeded")
    artifacts: list[ArtifactPublic]


class JobsPublic(Page[JobPublic]):
    pass


class JobEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    # warning: something the owner should know about a job that goes on (a damaged stored file recomputed).
    type: Literal["status", "progress", "warning"]
    stage: str | None
    progress: float | None
    message: str
    data: dict[str, Any]
    created_at: datetime


class JobEventsPublic(Page[JobEventPublic]):
    pass


def artifacts_public(job: Job) -> list[ArtifactPublic]:
    return [
        ArtifactPublic(
            name=a.name,
            size_bytes=a.size_bytes,
            sha256=a.sha256,
            content_type=a.content_type,
            url=f"/v1/jobs/{job.id}/artifacts/{a.name}",
            description=describe_artifact(a.name),
        )
        for a in job.artifacts
    ]


def job_public(job: Job) -> JobPublic:
    artifacts = artifacts_public(job)
    error = JobError(**job.error) if job.error else None
    return JobPublic(
        id=job.id,
        kind=job.kind,
        status=job.status,
        stage=job.stage,
        progress=job.progress,
        dataset_id=job.dataset_id,
        spec=job.spec,
        attempt=job.attempt,
        max_attempts=job.max_attempts,
        cancel_requested=job.cancel_requested,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        error=error,
        metrics=job.metrics,
        artifacts=artifacts,
    )
