"""A Rich progress bar in rows, with rows/s and ETA; a no-op when switched off."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.progress import Task
    from rich.text import Text

__all__ = ["JobProgress"]


def _rate_column() -> Any:
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RowRate(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed or 0:,.0f} rows/s", style="progress.data.speed")

    return RowRate()


class JobProgress:
    """Counts rows (the bar's total is an estimate for text inputs until all is read)."""

    def __init__(self, enabled: bool, total: int, done: int, description: str) -> None:
        self.rows = 0
        self.rejected = 0
        self._bar: Any = None
        self._task: Any = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            _rate_column(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task(description, total=max(total, done), completed=done)

    def advance(self, rows: int, rejected: int) -> None:
        self.rows += rows
        self.rejected += rejected
        if self._bar is not None:
            self._bar.advance(self._task, rows)

    def correct_total(self, delta: int) -> None:
        """A text shard turned out to hold ``delta`` more rows than estimated."""
        if self._bar is not None and delta:
            task = self._bar.tasks[0]
            self._bar.update(self._task, total=(task.total or 0) + delta)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
