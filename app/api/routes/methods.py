"""``/v1/methods``: what jobs may name, with descriptions, parameters, defaults and bounds."""

from __future__ import annotations

from fastapi import APIRouter

from app.schemas.methods import MethodsPublic
from app.services.catalog import catalog

router = APIRouter(prefix="/methods", tags=["methods"])


@router.get("")
def list_methods() -> MethodsPublic:
    """Every score, selection policy, distillation family and method, model and dataset format the engine has
    registered (plugins' included), each with its one-line description and its parameters."""
    return catalog()
