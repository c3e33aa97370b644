"""The engine's registries as ``/v1/methods`` lists them (``app.schemas.methods``): the one place that reads
every registry for an interface, so the API, the CLI, the docs and a dashboard show the same entries."""

from __future__ import annotations

import types
from typing import Any, Union, get_args, get_origin

from app.schemas.methods import (
    DistillMethodPublic,
    FamilyPublic,
    FormatPublic,
    MethodsPublic,
    ModelPublic,
    ParameterPublic,
    ParameterType,
    PolicyPublic,
    ScorePublic,
)
from engine.config_fields import Offered, offered
from engine.data.formats import FORMATS
from engine.distill.families import FAMILIES
from engine.distill.registry import METHODS
from engine.models.registry import MODELS
from engine.pipeline.prune_config import prune_method_names
from engine.scores import SCORES
from engine.scores.params import Param
from engine.select.registry import POLICIES

_JSON_TYPES: dict[type, ParameterType] = {bool: "boolean", int: "integer", float: "number", str: "string"}


def _json_type(annotation: Any) -> tuple[ParameterType, bool]:
    """A field's annotation as (JSON type, nullable): ``int | None`` is ("integer", True)."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        return _JSON_TYPES[members[0]], len(members) < len(get_args(annotation))
    return _JSON_TYPES[annotation], False


def _option(option: Offered) -> ParameterPublic:
    kind, nullable = _json_type(option.type)
    declared = option.setting
    return ParameterPublic(name=option.name, type=kind, nullable=nullable, default=declared.default,
                           description=declared.help, minimum=declared.ge, exclusive_minimum=declared.gt,
                           maximum=declared.le, exclusive_maximum=declared.lt)


def _score_param(name: str, param: Param) -> ParameterPublic:
    lower = {"exclusive_minimum" if param.exclusive_minimum else "minimum": param.minimum}
    # A default of None is derived from the proxy run (the help says how); the value a job gives is a number.
    return ParameterPublic(name=name, type=_JSON_TYPES[param.kind], nullable=False, default=param.default,
                           description=param.help, maximum=param.maximum, **lower)


def catalog() -> MethodsPublic:
    return MethodsPublic(
        prune_methods=prune_method_names(),
        scores=[
            ScorePublic(name=s.name, description=s.description, reference=s.reference,
                        higher_is_important=s.higher_is_important, needs_training=s.implementation is not None,
                        selects_globally=s.selects_globally,
                        params=[_score_param(name, p) for name, p in s.params.items()])
            for s in SCORES
        ],
        selection_policies=[
            PolicyPublic(name=p.name, description=p.description, ranking=p.ranking, reads_score=p.reads_score,
                         needs_features=p.needs_features)
            for p in POLICIES
        ],
        distillation_families=[
            FamilyPublic(name=f.name, description=f.description, uses_experts=f.uses_experts,
                         methods=[m.name for m in METHODS if m.family == f.name],
                         options={g.name: [_option(o) for o in offered(g.config_type())] for g in f.options})
            for f in FAMILIES
        ],
        distillation_methods=[
            DistillMethodPublic(name=m.name, description=m.description, reference=m.reference, family=m.family)
            for m in METHODS
        ],
        models=[ModelPublic(name=m.name, description=m.description) for m in MODELS],
        dataset_formats=[FormatPublic(name=f.name, description=f.description, accepts=f.accepts) for f in FORMATS],
    )
