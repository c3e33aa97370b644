"""``/v1/methods``: what the engine offers, as registered: scores, selection policies, distillation families
and methods, models and dataset formats, each with its one-line description and its parameters (defaults,
bounds, help). Built from the registries per request, so a plugin's entries are listed like built-in ones."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

ParameterType = Literal["integer", "number", "boolean", "string"]


class ParameterPublic(BaseModel):
    """One tunable parameter, as a job spec names it; bounds as JSON Schema names them."""

    name: str
    type: ParameterType
    nullable: bool = Field(description="null is accepted (and means what the description says, often the method's choice)")
    default: Any
    description: str | None
    minimum: float | None = None
    exclusive_minimum: float | None = None
    maximum: float | None = None
    exclusive_maximum: float | None = None


class ScorePublic(BaseModel):
    name: str
    description: str
    reference: str
    higher_is_important: bool = Field(description="larger values mark harder, more informative samples")
    needs_training: bool = Field(description="read from the proxy training run (false: needs no training)")
    selects_globally: bool = Field(description="its paper keeps the top samples over the whole dataset, not per class")
    params: list[ParameterPublic] = Field(description="the job's score_params")


class PolicyPublic(BaseModel):
    name: str = Field(description="the job's mode")
    description: str
    ranking: bool = Field(description="reads only the order of one score (usable for a pruned distillation start)")
    reads_score: bool = Field(description="the kept set depends on the score")
    needs_features: bool = Field(description="reads the proxy model's features of every sample")


class FamilyPublic(BaseModel):
    name: str
    description: str
    methods: list[str]
    uses_experts: bool = Field(description="trains (or reuses) expert trajectories first")
    options: dict[str, list[ParameterPublic]] = Field(description="the job's option groups, by group name")


class DistillMethodPublic(BaseModel):
    name: str
    description: str
    reference: str
    family: str


class ModelPublic(BaseModel):
    name: str
    description: str


class FormatPublic(BaseModel):
    name: str
    description: str
    accepts: str


class MethodsPublic(BaseModel):
    prune_methods: list[str] = Field(description="what a prune job's method accepts: auto (Condense chooses) or a score")
    scores: list[ScorePublic]
    selection_policies: list[PolicyPublic]
    distillation_families: list[FamilyPublic]
    distillation_methods: list[DistillMethodPublic]
    models: list[ModelPublic]
    dataset_formats: list[FormatPublic]
