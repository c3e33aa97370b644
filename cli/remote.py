"""``condense datasets`` and ``condense jobs``: the service from a terminal, through the Python client
(:mod:`condense.client`), so the CLI, notebooks and scripts share one implementation.

The server and key come from ``--url``/``--api-key``, else ``CONDENSE_URL``/``CONDENSE_API_KEY``, else the local
server's key file. ``--json`` prints the API's JSON on stdout for scripts; tables and progress go to stderr.
A refusal prints the field and the fix and exits with status 2; a job that failed exits with status 1.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console, Group
from rich.table import Table

if TYPE_CHECKING:
    from condense.client import Client, Job

console = Console(stderr=True)
datasets_app = typer.Typer(help="Upload and manage datasets on a Condense server.", no_args_is_help=True)
jobs_app = typer.Typer(help="Submit, follow and download jobs on a Condense server.", no_args_is_help=True)

Url = Annotated[str | None, typer.Option("--url", help="the server (default: CONDENSE_URL, else http://127.0.0.1:8000)")]
ApiKey = Annotated[str | None, typer.Option("--api-key", help="API key (default: CONDENSE_API_KEY, else the local server's)")]
AsJson = Annotated[bool, typer.Option("--json", help="print the API's JSON on stdout instead of a table")]
JobId = Annotated[str, typer.Argument(help="the job's id (job_...)")]
DatasetId = Annotated[str, typer.Argument(help="the dataset's id (ds_...)")]


def register(app: typer.Typer) -> None:
    app.add_typer(datasets_app, name="datasets")
    app.add_typer(jobs_app, name="jobs")


@contextmanager
def _client(url: str | None, api_key: str | None) -> Iterator[Client]:
    """The client, with the service's refusals printed as ``error in FIELD: ...`` (exit status 2) and an
    unreachable server said plainly (exit status 3)."""
    import httpx

    from condense.client import Client, CondenseError

    client = Client(url, api_key)
    try:
        yield client
    except CondenseError as exc:
        fields = exc.errors or [{"field": exc.field, "message": exc.detail or exc.title}]
        for error in fields:
            console.print(f"[red]error[/] in {error.get('field') or 'request'}: {error.get('message') or exc.detail}")
        if exc.status == 401:
            console.print("  hint: pass --api-key or set CONDENSE_API_KEY (condense admin create-key makes one)")
        raise typer.Exit(2) from None
    except httpx.TransportError as exc:
        console.print(f"[red]error[/]: cannot reach {client.url} ({exc}); is the server running (condense serve)?")
        raise typer.Exit(3) from None
    finally:
        client.close()


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _output(data: Any, as_json: bool, render: Callable[[Any], Any]) -> None:
    """``data`` as JSON on stdout for scripts, or what ``render`` makes of it on the console."""
    if as_json:
        _print_json(data)
    else:
        console.print(render(data))


def _dataset_table(rows: list[dict[str, Any]]) -> Table:
    table = Table("id", "name", "format", "samples", "classes", "image", "created")
    for d in rows:
        table.add_row(d["id"], d["name"], d["format"], str(d["num_samples"]), str(d["num_classes"]),
                      "x".join(map(str, d["image_shape"])), str(d["created_at"])[:19])
    return table


def _job_table(rows: list[dict[str, Any]]) -> Table:
    table = Table("id", "kind", "status", "progress", "stage", "dataset", "created")
    for j in rows:
        table.add_row(j["id"], j["kind"], j["status"], f"{100 * j['progress']:.0f}%", j.get("stage") or "",
                      j.get("dataset_id") or "", str(j["created_at"])[:19])
    return table


@datasets_app.command("upload", epilog="Example: condense datasets upload pets.zip --name pets")
def upload(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="the dataset file (condense formats lists them)")],
    name: Annotated[str | None, typer.Option(help="a display name (default: the file's stem)")] = None,
    url: Url = None, api_key: ApiKey = None, as_json: AsJson = False,
) -> None:
    """Upload a dataset file with a progress bar; prints its id."""
    with _client(url, api_key) as client:
        dataset = client.datasets.upload(path, name=name, progress=not as_json)
    if as_json:
        _print_json(dataset.data)
    else:
        console.print(f"{dataset.name}: {dataset.data['num_samples']} images, {len(dataset.classes)} classes")
        typer.echo(dataset.id)


@datasets_app.command("list", epilog="Example: condense datasets list --json")
def list_datasets(url: Url = None, api_key: ApiKey = None, as_json: AsJson = False) -> None:
    """List your datasets, newest first."""
    with _client(url, api_key) as client:
        rows = [d.data for d in client.datasets.list()]
    _output(rows, as_json, _dataset_table)


@datasets_app.command("show", epilog="Example: condense datasets show ds_0123")
def show_dataset(dataset_id: DatasetId, url: Url = None, api_key: ApiKey = None, as_json: AsJson = False) -> None:
    """One dataset: its splits and each class's count."""
    with _client(url, api_key) as client:
        data = client.datasets.get(dataset_id).data
    _output(data, as_json, _dataset_details)


def _dataset_details(data: dict[str, Any]) -> Group:
    classes = Table("class", "train", "test")
    for c in data["classes"]:
        classes.add_row(c["name"], str(c["train"]), str(c["test"]))
    return Group(_dataset_table([data]), classes)


@datasets_app.command("delete", epilog="Example: condense datasets delete ds_0123")
def delete_dataset(dataset_id: DatasetId, url: Url = None, api_key: ApiKey = None) -> None:
    """Delete a dataset and its stored file."""
    with _client(url, api_key) as client:
        client.datasets.delete(dataset_id)
    console.print(f"deleted {dataset_id}")


@jobs_app.command(
    "submit",
    epilog="Examples: condense jobs submit --dataset ds_0123 --keep 0.1 --wait; "
    "condense jobs submit --dataset ds_0123 --kind distill --ipc 10; condense jobs submit --spec job.yaml --wait",
)
def submit(
    spec: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help="a job spec as POSTed to /v1/jobs (JSON or YAML); the other job options are then refused")] = None,
    dataset: Annotated[str | None, typer.Option(help="the dataset's id (overrides the spec's dataset_id)")] = None,
    kind: Annotated[str, typer.Option(help="prune or distill (without --spec)")] = "prune",
    method: Annotated[str | None, typer.Option(help="score (prune) or method (distill); default: the server's")] = None,
    keep: Annotated[float | None, typer.Option(help="prune: fraction kept in (0, 1], or a count")] = None,
    ipc: Annotated[int | None, typer.Option(help="distill: images per class")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="follow the job to its end (exit status 1 if it fails)")] = False,
    url: Url = None, api_key: ApiKey = None, as_json: AsJson = False,
) -> None:
    """Submit a prune or distill job; prints its id (or follows it with --wait)."""
    from cli.spec_file import load_spec_file

    if spec is not None:
        if any(v is not None for v in (method, keep, ipc)) or kind != "prune":
            console.print("[red]error[/] in --spec: the spec sets every job setting; leave out --kind, --method, --keep and --ipc")
            raise typer.Exit(2)
        body = load_spec_file(spec, console) | ({"dataset_id": dataset} if dataset else {})
    else:
        if dataset is None:
            console.print("[red]error[/] in --dataset: name the dataset (condense datasets list), or give --spec")
            raise typer.Exit(2)
        body = {"kind": kind, "dataset_id": dataset, **({"method": method} if method else {})}
        if keep is not None:
            body["keep_count" if keep > 1 else "keep_fraction"] = int(keep) if keep > 1 else keep
        if ipc is not None:
            body["ipc"] = ipc
    with _client(url, api_key) as client:
        job = client.jobs.submit(body)
        if wait:
            _follow(job, as_json)
            return
    if as_json:
        _print_json(job.data)
    else:
        console.print(f"queued {job.kind} job (condense jobs watch {job.id})")
        typer.echo(job.id)


def _follow(job: Job, as_json: bool) -> None:
    """Follows ``job`` with a live bar to its end, then prints its result; exit status 1 if it did not succeed."""
    job.wait(progress=not as_json, raise_on_failure=False)
    _output(job.data, as_json, _result)
    if job.status != "succeeded":
        raise typer.Exit(1)


def _result(data: dict[str, Any]) -> Group:
    """A finished job's outcome: its metrics and files, or its status and error."""
    if data["status"] != "succeeded":
        error = data.get("error") or {}
        return Group(f"[red]{data['id']} {data['status']}[/]" + (f": {error.get('message', '')}" if error else ""))
    table = Table("metric", "value", title=f"{data['id']} succeeded")
    for key, value in (data.get("metrics") or {}).items():
        if not isinstance(value, dict | list):
            table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    files = ", ".join(a["name"] for a in data["artifacts"])
    return Group(table, f"files: {files} (condense jobs download {data['id']} --out DIR)")


@jobs_app.command("watch", epilog="Example: condense jobs watch job_0123")
def watch(job_id: JobId, url: Url = None, api_key: ApiKey = None, as_json: AsJson = False) -> None:
    """Follow a job live (stage, progress, ETA) to its end; exit status 1 if it fails, with its error."""
    with _client(url, api_key) as client:
        _follow(client.jobs.get(job_id), as_json)


@jobs_app.command("list", epilog="Example: condense jobs list --status running")
def list_jobs(
    status: Annotated[str | None, typer.Option(help="queued, running, succeeded, failed or canceled")] = None,
    kind: Annotated[str | None, typer.Option(help="prune, prune_sweep, distill or prune_then_distill")] = None,
    url: Url = None, api_key: ApiKey = None, as_json: AsJson = False,
) -> None:
    """List your jobs, newest first."""
    with _client(url, api_key) as client:
        rows = [j.data for j in client.jobs.list(status=status, kind=kind)]
    _output(rows, as_json, _job_table)


@jobs_app.command("show", epilog="Example: condense jobs show job_0123 --json")
def show_job(job_id: JobId, url: Url = None, api_key: ApiKey = None, as_json: AsJson = False) -> None:
    """One job: status, progress, metrics and files."""
    with _client(url, api_key) as client:
        data = client.jobs.get(job_id).data
    _output(data, as_json, _job_details)


def _job_details(data: dict[str, Any]) -> Group:
    finished = data["status"] in ("succeeded", "failed", "canceled")
    return Group(_job_table([data]), *([_result(data)] if finished else []))


@jobs_app.command("cancel", epilog="Example: condense jobs cancel job_0123")
def cancel(job_id: JobId, url: Url = None, api_key: ApiKey = None, as_json: AsJson = False) -> None:
    """Cancel a queued job, or ask a running one to stop."""
    with _client(url, api_key) as client:
        job = client.jobs.cancel(job_id)
    _output(job.data, as_json, lambda data: f"{data['id']}: {data['status']}")


@jobs_app.command("delete", epilog="Example: condense jobs delete job_0123")
def delete_job(job_id: JobId, url: Url = None, api_key: ApiKey = None) -> None:
    """Delete a finished job and its files."""
    with _client(url, api_key) as client:
        client.jobs.delete(job_id)
    console.print(f"deleted {job_id}")


@jobs_app.command("download", epilog="Example: condense jobs download job_0123 --out results/")
def download(
    job_id: JobId,
    out: Annotated[Path, typer.Option("--out", help="folder to write the files into (created if missing)")],
    name: Annotated[list[str] | None, typer.Option("--name", help="only this file (repeatable)")] = None,
    url: Url = None, api_key: ApiKey = None, as_json: AsJson = False,
) -> None:
    """Download a job's files (resumed where a download stopped, checked by sha256)."""
    with _client(url, api_key) as client:
        paths = client.jobs.get(job_id).download(out, names=name)
    if as_json:
        _print_json([str(p) for p in paths])
    else:
        console.print(f"wrote {', '.join(p.name for p in paths)} to {out}")
