"""``--spec FILE``: run the job a JSON spec describes, exactly as the service would run it when POSTed to
``/v1/jobs``: the spec is validated by the API's own schema and mapped to the engine config by the one mapping
(``app.services.job_configs``), so a spec that works offline works on the service and the other way round.
The data is the command's DATA argument; a ``dataset_id`` in the file is ignored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:
    from app.schemas.jobs import JobSpec

SPEC_HELP = (
    "A job spec as POSTed to /v1/jobs (JSON, or YAML as .yaml/.yml; its dataset_id left out or ignored): every job setting comes from it, "
    "so the command's job options are refused beside it."
)
LOCAL_DATASET = "local"  # stands in for the dataset_id the schema requires: the data is the DATA argument


def load_spec_file(path: Path, console: Console) -> dict[str, Any]:
    """The one object a JSON or YAML spec file holds (YAML where the name ends in .yaml or .yml; read with
    ``yaml.safe_load``, which builds only plain data); a problem exits with status 2."""
    as_yaml = path.suffix.lower() in (".yaml", ".yml")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        _fail(console, "--spec", f"cannot read {path}: {exc}")
    if as_yaml:
        import yaml

        try:
            given: Any = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            _fail(console, "--spec", f"cannot read {path} as YAML: {exc}")
    else:
        try:
            given = json.loads(text)
        except json.JSONDecodeError as exc:
            _fail(console, "--spec", f"cannot read {path} as JSON: {exc}")
    if not isinstance(given, dict):
        _fail(console, "--spec", "the file must hold one object, a job spec")
    return given


def read_spec(path: Path, kinds: tuple[str, ...], console: Console) -> JobSpec:
    """The validated spec in ``path``, of one of ``kinds``; a problem is printed as the API would name it
    (``error in ipc: ...``) and exits with status 2."""
    # The API's schema and its pydantic stack: imported when a spec is given, so that `--help` stays light.
    from pydantic import TypeAdapter, ValidationError

    from app.schemas.jobs import JobCreate

    given = load_spec_file(path, console)
    if given.get("kind") not in kinds:
        _fail(console, "kind", f"this command runs {' or '.join(kinds)} jobs, not {given.get('kind')!r}")
    try:
        spec: JobSpec = TypeAdapter(JobCreate).validate_python({**given, "dataset_id": LOCAL_DATASET})
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"][1:]) or "spec"  # [0] is the kind's model
            console.print(f"[red]error[/] in {field}: {error['msg']}")
        raise typer.Exit(2) from None
    return spec


def refuse_job_options(ctx: typer.Context, kept: set[str], console: Console) -> None:
    """With ``--spec`` only the options in ``kept`` (data, output, local folders) may be given as well."""
    # By name: typer carries its own copy of click, whose ParameterSource is not click's.
    given = [p for p in ctx.command.params if p.name not in kept
             and getattr(ctx.get_parameter_source(p.name or ""), "name", None) == "COMMANDLINE"]
    if given:
        names = ", ".join(p.opts[0] for p in given)
        _fail(console, "--spec", f"the spec sets every job setting; leave out {names} or put them in the spec")


def _fail(console: Console, field: str, message: str) -> NoReturn:
    console.print(f"[red]error[/] in {field}: {message}")
    raise typer.Exit(2)
