"""A rich progress bar fed by engine progress events."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich import get_console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from engine.progress import ProgressEvent, ProgressFn, Tracker


@contextmanager
def progress_bar(description: str) -> Iterator[ProgressFn]:
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TextColumn("{task.fields[stage]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task(description, total=1.0, stage="")

        def update(event: ProgressEvent) -> None:
            progress.update(task, completed=event.fraction, stage=f"{event.stage} {event.message}")

        yield update


@contextmanager
def progress_tracker(description: str) -> Iterator[Tracker]:
    """A Tracker for engine work run in this process: progress on the bar, warnings printed above it."""

    def warn(stage: str, message: str) -> None:
        # The bar's own console (rich's global one), so the line lands above the live bar, not through it.
        get_console().print(f"[yellow]warning[/] ({stage}): {message}")

    with progress_bar(description) as update:
        yield Tracker(on_progress=update, on_warning=warn)
