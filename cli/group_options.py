"""The distillation families' options as CLI options, generated from their configs: one ``--<group>-<option>``
per option a registered family's group declares with ``setting`` (``--trajectory-syn-steps``), with its help
and bounds, so a family added by a plugin is offered here as in the API's schema."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, get_type_hints

import typer

from cli.prune import sentence
from engine.config_fields import Offered, Setting, offered
from engine.distill.families import option_groups
from engine.distill.registry import methods_using

GIVEN = "options"  # the wrapped command's parameter that receives {group: {option: value}} of those given


def flag(group: str, option: str) -> str:
    return f"--{group}-{option}".replace("_", "-")


def _within(declared: Setting) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if (problem := declared.problem(value)) is not None:
            raise typer.BadParameter(problem)
        return value

    return check


def _panel(group: str) -> str:
    return f"{group.replace('_', ' ').capitalize()} options ({', '.join(methods_using(group))})"


def _help(option: Offered) -> str:
    text = option.setting.help or option.name.replace("_", " ")
    default = option.setting.default
    return sentence(text if default is None else f"{text} (default: {default})")


def _parameters() -> dict[str, tuple[str, str, inspect.Parameter]]:
    """Each generated option's parameter by its Python name, with its group and offered name."""
    found = {}
    for group, declared in option_groups().items():
        for option in offered(declared.config_type()):
            name = f"{group}__{option.name}"
            kind = option.type | None  # unset: the group's default
            info = typer.Option(flag(group, option.name), help=_help(option), callback=_within(option.setting),
                                rich_help_panel=_panel(group), show_default=False)
            parameter = inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                          annotation=Annotated[kind, info])
            found[name] = (group, option.name, parameter)
    return found


def with_group_options(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` offering every group's options; it receives those given as ``options={group: {name: value}}``."""
    generated = _parameters()
    hints = get_type_hints(command, include_extras=True)
    own = [p.replace(annotation=hints[p.name]) for p in inspect.signature(command).parameters.values() if p.name != GIVEN]

    @functools.wraps(command)
    def run(**values: Any) -> None:
        given: dict[str, dict[str, Any]] = {}
        for name, (group, option, _) in generated.items():
            if (value := values.pop(name)) is not None:
                given.setdefault(group, {})[option] = value
        command(**values, **{GIVEN: given})

    parameters = own + [parameter for _, _, parameter in generated.values()]
    run.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in parameters}
    return run
