"""Service commands: ``serve`` (API), ``worker`` (Celery), ``migrate`` and ``demo`` (everything at once)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from app import launch
from condense.client import Client, Job
from engine.evaluate.verdict import describe

console = Console()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("worker")(worker)
    app.command("migrate")(migrate)
    app.command("demo")(demo)


def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """Run the HTTP API (migrates the database first)."""
    import uvicorn

    uvicorn.run("app.main:app", host=host, port=port, workers=workers, proxy_headers=True)


def worker(
    queues: Annotated[str, typer.Option(help="comma-separated queues: cpu, gpu")] = "cpu",
    concurrency: Annotated[int, typer.Option(help="jobs run at once (each uses every core)")] = 1,
    max_tasks_per_child: Annotated[int | None, typer.Option(help="recycle a process after N jobs (gpu: 1)")] = None,
) -> None:
    """Run a Celery worker for the given queues (migrates the database first)."""
    from worker.celery_app import celery_app

    if "gpu" in queues.split(","):
        # One job per fresh process: a GPU is not shared, and its memory is returned when the process exits.
        if concurrency != 1:
            raise typer.BadParameter("a gpu worker runs one job at a time", param_hint="--concurrency")
        max_tasks_per_child = 1
    celery_app.worker_main(launch.celery_worker_argv(queues, concurrency, max_tasks_per_child))


def migrate() -> None:
    """Apply the database migrations."""
    # Imported when the command runs (alembic, SQLAlchemy): `condense --help` answers without them.
    from app.core.config import get_settings
    from app.core.migrate import upgrade_to_head

    settings = get_settings()
    settings.ensure_folders()
    upgrade_to_head(settings.database_url)
    console.print(f"database at head: {settings.database_url}")


def demo(
    data: Annotated[Path | None, typer.Option(help="dataset file to upload (default: the built-in digits)")] = None,
    method: Annotated[str | None, typer.Option(help="score to prune with (default: the job's default)")] = None,
    keep: Annotated[float, typer.Option(help="fraction of the training set to keep", min=0, max=1)] = 0.3,
    proxy_epochs: Annotated[int, typer.Option(help="epochs of the scoring proxy")] = 5,
    eval_epochs: Annotated[int, typer.Option(help="epochs of each evaluation run")] = 10,
    seeds: Annotated[int, typer.Option(help="evaluation seeds")] = 2,
    out: Annotated[Path, typer.Option(help="where to save the downloaded results")] = Path("condense-demo-results"),
) -> None:
    """Start the API and a worker on the embedded defaults, prune a dataset over HTTP, show the results, stop."""
    workspace = Path(tempfile.mkdtemp(prefix="condense-demo-"))
    env = launch.service_env({"CONDENSE_DATA_DIR": str(workspace / "data")}, isolated=True)
    port = launch.free_port()
    base_url = f"http://127.0.0.1:{port}"
    console.print(f"[bold]Starting[/] the API on {base_url} and a worker (logs and data in {workspace})")
    api = launch.start_api(env, port, workspace / "api.log")
    processes = [api]
    ok = False
    try:
        launch.wait_ready(base_url, api)
        processes.append(launch.start_worker(env, workspace / "worker.log"))
        token = launch.local_auth_headers(workspace / "data")["Authorization"].removeprefix("Bearer ")
        with Client(base_url, token) as client:
            job = _run_demo_job(
                client,
                data,
                {
                    "kind": "prune",
                    # Only what the demo shrinks for speed is set: score and policy are the job's defaults.
                    **({"method": method} if method else {}),
                    "keep_fraction": keep,
                    "device": "auto",
                    "proxy": {"epochs": proxy_epochs, "width": 32},
                    "evaluation": {"seeds": seeds, "epochs": eval_epochs, "width": 32},
                },
            )
            if job.artifacts:
                job.download(out)
                console.print(f"Saved {len(job.artifacts)} files to {out}/ (kept.csv names the kept images)")
        job = job.data
        _show(job)
        ok = job["status"] == "succeeded"
    finally:
        for proc in reversed(processes):
            launch.stop(proc)
        if ok:
            shutil.rmtree(workspace, ignore_errors=True)
        else:
            console.print(f"[red]The demo did not succeed;[/] logs are in {workspace}")
    if not ok:
        raise typer.Exit(1)


def _run_demo_job(client: Client, data: Path | None, spec: dict[str, Any]) -> Job:
    dataset = client.datasets.builtin("digits") if data is None else client.datasets.upload(data)
    splits = dataset.data["splits"]
    console.print(
        f"Dataset [bold]{dataset.name}[/]: {splits['train']} training and {splits['test']} test images, "
        f"{len(dataset.classes)} classes"
    )
    return client.jobs.submit({**spec, "dataset_id": dataset.id}).wait(progress=True, raise_on_failure=False)


def _show(job: dict[str, Any]) -> None:
    if job["status"] != "succeeded":
        console.print(f"[red]Job {job['status']}[/]: {job['error']}")
        return
    metrics = job["metrics"]
    table = Table(title=f"Test accuracy ({metrics['kept']} of {metrics['total']} training images kept)")
    for column in ("training set", "images", "accuracy (mean ± std)"):
        table.add_column(column)
    sizes = {"subset": metrics["kept"], "random": metrics["kept"], "full": metrics["total"]}
    for name, label in (
        ("subset", f"pruned ({job['spec']['method']}, {metrics.get('policy', job['spec']['mode'])})"),
        ("random", "random subset"),
        ("full", "full data"),
    ):
        stats = metrics.get(f"{name}_accuracy")
        if stats:
            table.add_row(label, str(sizes[name]), f"{stats['mean']:.2%} ± {stats['std']:.2%}")
    console.print(table)
    if gain := metrics.get("gain_over_random"):
        console.print(
            "Pruned subset, trained from the same seeds as the random one: "
            f"[bold]{describe(gain['verdict'], what='a random subset of the same size')}[/]"
        )
