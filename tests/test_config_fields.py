"""engine.config_fields: a field's default, help, bounds and offered name are declared once, and checked there."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from engine.config_fields import Setting, offered, setting, setting_of


@dataclass
class Example:
    count: int = setting(5, "how many", ge=1, le=10, name="n")
    share: float | None = setting(None, "a share", gt=0, lt=1)
    internal: float = 0.5  # a plain field: the engine's, offered by no interface


def test_offered_lists_the_declared_fields_with_their_types_and_names() -> None:
    found = offered(Example)
    assert [(o.field, o.name, o.type) for o in found] == [("count", "n", int), ("share", "share", float | None)]
    assert setting_of(Example, "internal") == Setting(0.5)


@pytest.mark.parametrize(("field", "value", "problem"), [
    ("count", 0, "must be >= 1"), ("count", 11, "must be <= 10"), ("count", 10, None),
    ("share", 0, "must be > 0"), ("share", 1.0, "must be < 1"), ("share", None, None), ("share", 0.5, None),
])
def test_a_value_out_of_the_declared_bounds_is_named(field: str, value: float | None, problem: str | None) -> None:
    assert setting_of(Example, field).problem(value) == problem


def test_bounds_are_pydantic_s_names_of_those_set() -> None:
    assert setting_of(Example, "count").bounds() == {"ge": 1, "le": 10}
    assert setting_of(Example, "share").bounds() == {"gt": 0, "lt": 1}
