"""Progress reporting and cooperative cancellation for long engine work."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


class CancelledError(Exception):
    """Raised inside engine work when the caller asked it to stop."""


@dataclass(frozen=True)
class ProgressEvent:
    """One progress report.

    Args:
        stage: short machine-readable name of the current stage (``proxy_training``, ``evaluate``...).
        fraction: overall completion of the whole job in [0, 1].
        message: human-readable detail.
        metrics: numbers worth showing (loss, accuracy...).
    """

    stage: str
    fraction: float
    message: str = ""
    metrics: dict[str, float] = field(default_factory=dict)


ProgressFn = Callable[[ProgressEvent], None]
CancelFn = Callable[[], bool]
WarnFn = Callable[[str, str], None]
"""(stage, message): something the user should know about a result that still succeeds."""


@dataclass
class Tracker:
    """Maps a stage's local progress onto the job's overall [0, 1] range and polls cancellation.

    A job is split into consecutive spans (``span(start, end)``); code inside a span reports its
    own fraction and the tracker rescales it, so nested stages never need to know the whole plan.
    """

    on_progress: ProgressFn | None = None
    should_cancel: CancelFn | None = None
    start: float = 0.0
    end: float = 1.0
    on_warning: WarnFn | None = None

    def span(self, start: float, end: float) -> Tracker:
        width = self.end - self.start
        return Tracker(
            self.on_progress, self.should_cancel, self.start + width * start, self.start + width * end, self.on_warning
        )

    def warn(self, stage: str, message: str) -> None:
        """A warning event (the service records it in the job's events; the CLI prints it)."""
        if self.on_warning is not None:
            self.on_warning(stage, message)

    def report(self, stage: str, fraction: float, message: str = "", **metrics: float) -> None:
        self.check_cancel()
        if self.on_progress is not None:
            frac = min(max(fraction, 0.0), 1.0)
            overall = self.start + (self.end - self.start) * frac
            self.on_progress(ProgressEvent(stage, overall, message, {k: float(v) for k, v in metrics.items()}))

    def check_cancel(self) -> None:
        if self.should_cancel is not None and self.should_cancel():
            raise CancelledError("cancelled by request")
