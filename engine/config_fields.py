"""Help and limits declared beside a config field's default, so that the API's schema and the CLI's
options read all three from the engine instead of restating them::

    width: int = setting(64, "ConvNet width (channels)", ge=1, le=1024)

``setting_of(ProxyConfig, "width")`` gives them back. A plain field has a default and nothing else.
``offered(config)`` lists the fields declared with ``setting``: in an option group's config (a distillation
family's settings) those are the ones the API and the CLI offer, generated from the declaration.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, TypeVar, get_type_hints

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T")
_KEY = "condense"  # the field-metadata entry; other libraries may keep their own beside it


@dataclass(frozen=True)
class Setting:
    """What an interface needs to offer one config field.

    Attributes:
        default: the field's default (a fresh one for a ``default_factory`` field).
        help: one line for the API's description and the CLI's help; None where the name says it all.
        ge, gt, le, lt: the values a job may ask for (inclusive or exclusive), as pydantic names them.
        name: the name interfaces give the field where it differs from the engine's (an API name clients use).
    """

    default: Any
    help: str | None = None
    ge: int | float | None = None
    gt: int | float | None = None
    le: int | float | None = None
    lt: int | float | None = None
    name: str | None = None

    def bounds(self) -> dict[str, int | float]:
        """The bounds that are set, under pydantic's names."""
        declared = {"ge": self.ge, "gt": self.gt, "le": self.le, "lt": self.lt}
        return {bound: value for bound, value in declared.items() if value is not None}

    def problem(self, value: int | float | None) -> str | None:
        """Why ``value`` is out of bounds (``must be >= 1``), or None; None itself is the default's business."""
        if value is None:
            return None
        checks = {"ge": (">=", operator.ge), "gt": (">", operator.gt), "le": ("<=", operator.le), "lt": ("<", operator.lt)}
        for bound, limit in self.bounds().items():
            sign, holds = checks[bound]
            if not holds(value, limit):
                return f"must be {sign} {limit}"
        return None


@dataclass(frozen=True)
class Offered:
    """A config field an interface offers: its engine name, the name offered, its type and its setting."""

    field: str
    name: str
    type: Any
    setting: Setting


def setting(
    default: T,
    help: str | None = None,
    *,
    ge: int | float | None = None,
    gt: int | float | None = None,
    le: int | float | None = None,
    lt: int | float | None = None,
    name: str | None = None,
) -> T:
    """A dataclass field with a default, one line of help and the bounds of what a job may ask for."""
    declared = Setting(default, help, ge=ge, gt=gt, le=le, lt=lt, name=name)
    return field(default=default, metadata={_KEY: declared})


def like(config: type[DataclassInstance], name: str, **changes: Any) -> Any:
    """A field declared as ``config``'s field ``name``, with ``changes`` (e.g. another default)."""
    declared = replace(setting_of(config, name), **changes)
    return field(default=declared.default, metadata={_KEY: declared})


def setting_of(config: type[DataclassInstance], name: str) -> Setting:
    """The default, help and bounds of ``config``'s field ``name``."""
    declared = {f.name: f for f in fields(config)}[name]
    if _KEY in declared.metadata:
        found: Setting = declared.metadata[_KEY]
        return found
    if declared.default_factory is not MISSING:
        return Setting(declared.default_factory())
    if declared.default is MISSING:
        raise ValueError(f"{config.__name__}.{name} has no default to offer")
    return Setting(declared.default)


def help_of(config: type[DataclassInstance], name: str) -> str:
    """The help of ``config``'s field ``name``; a field declared without one is a mistake of the caller's."""
    help = setting_of(config, name).help
    if help is None:
        raise ValueError(f"{config.__name__}.{name} is declared without help")
    return help


@functools.cache
def offered(config: type[DataclassInstance]) -> tuple[Offered, ...]:
    """``config``'s fields declared with ``setting``, in declaration order, with their resolved types. Cached: a
    config's declaration does not change, and every config built (a ``DistillConfig``'s groups, a schedule)
    reads it."""
    hints = get_type_hints(config)
    return tuple(
        Offered(f.name, found.name or f.name, hints[f.name], found)
        for f in fields(config)
        if (found := f.metadata.get(_KEY)) is not None
    )
