"""A rich progress bar fed by engine progress events."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from engine.progress import ProgressEvent, ProgressFn


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
