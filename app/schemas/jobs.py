"""Job specs (a discriminated union on ``kind``), job records, their events and artifacts.

Enumerations come from the engine's registries, so the API accepts exactly what the engine runs.
A new job kind is one more ``*JobCreate`` model added to the ``JobCreate`` union.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.models import Job, JobStatus
from app.schemas.common import Page, StrictModel
from engine.models.registry import model_names
from engine.pipeline.prune import method_names
from engine.pipeline.prune_config import ProxyConfig, SelectionConfig

PruneMethod = enum.StrEnum("PruneMethod", {name: name for name in method_names()})  # type: ignore[misc]
ModelName = enum.StrEnum("ModelName", {name: name for name in model_names()})  # type: ignore[misc]
Device = Literal["auto", "cpu", "cuda"]
SelectionMode = Literal["hardest", "easiest", "window", "ccs"]


class ProxyOptions(StrictModel):
    """The short proxy training run whose dynamics give the scores."""

    model: ModelName = ModelName("convnet")
    width: int = Field(64, ge=1, le=1024)
    epochs: int = Field(10, ge=1, le=1000)
    batch_size: int = Field(128, ge=1, le=8192)
    lr: float = Field(ProxyConfig.lr, gt=0, le=10)


class EvaluationOptions(StrictModel):
    """Fresh models trained on the subset (and, for comparison, random and full data) to measure it."""

    seeds: int = Field(3, ge=1, le=20)
    epochs: int = Field(20, ge=1, le=1000)
    model: ModelName = ModelName("convnet")
    width: int = Field(64, ge=1, le=1024)
    compare_random: bool = True
    full_data: bool = True
    archs: list[ModelName] = Field(
        default_factory=list, max_length=8, description="extra architectures to test transfer"
    )


class PruneJobCreate(StrictModel):
    """Score every training sample, keep a subset, and evaluate it."""

    kind: Literal["prune"]
    dataset_id: str = Field(max_length=40)
    method: PruneMethod
    keep_fraction: float | None = Field(None, gt=0, lt=1, description="share of the training set to keep")
    keep_count: int | None = Field(None, ge=1, description="number of training samples to keep")
    mode: SelectionMode = "hardest"
    window: tuple[float, float] | None = Field(None, description="[lo, hi] score quantiles kept in 'window' mode")
    class_balanced: bool = True
    ccs_hard_cutoff: float = Field(
        SelectionConfig.ccs_hard_cutoff, ge=0, lt=1, description="'ccs' mode: share of the hardest samples dropped first"
    )
    weights: bool = Field(False, description="also compute per-sample weights for the kept samples")
    proxy: ProxyOptions = Field(default_factory=ProxyOptions)
    evaluation: EvaluationOptions | None = Field(default_factory=EvaluationOptions)
    score_params: dict[str, float | int | str | bool] = Field(default_factory=dict, max_length=32)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    device: Device = "auto"

    @model_validator(mode="after")
    def _check_keep_and_window(self) -> PruneJobCreate:
        if (self.keep_fraction is None) == (self.keep_count is None):
            raise ValueError("give exactly one of keep_fraction and keep_count")
        if self.mode == "window":
            if self.window is None:
                raise ValueError("mode 'window' needs window [lo, hi]")
            lo, hi = self.window
            if not 0 <= lo < hi <= 1:
                raise ValueError("window must satisfy 0 <= lo < hi <= 1")
        elif self.window is not None:
            raise ValueError("window is only used with mode 'window'")
        return self


JobCreate = Annotated[Union[PruneJobCreate], Field(discriminator="kind")]  # noqa: UP007 - more kinds join here
JOB_KINDS = frozenset({"prune"})


class JobError(BaseModel):
    type: str = Field(description="machine-readable cause, e.g. 'dataset_invalid', 'timeout', 'lease_expired'")
    message: str


class ArtifactPublic(BaseModel):
    name: str
    size_bytes: int
    sha256: str
    content_type: str
    url: str


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
    type: Literal["status", "progress"]
    stage: str | None
    progress: float | None
    message: str
    data: dict[str, Any]
    created_at: datetime


class JobEventsPublic(Page[JobEventPublic]):
    pass


def job_public(job: Job) -> JobPublic:
    artifacts = [
        ArtifactPublic(
            name=a.name,
            size_bytes=a.size_bytes,
            sha256=a.sha256,
            content_type=a.content_type,
            url=f"/v1/jobs/{job.id}/artifacts/{a.name}",
        )
        for a in job.artifacts
    ]
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
