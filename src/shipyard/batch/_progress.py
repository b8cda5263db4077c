"""A Rich progress bar in rows, with rows/s and ETA; a no-op when switched off."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.progress import Task
    from rich.text import Text

__all__ = ["JobProgress"]


def _columns() -> list[Any]:
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RowRate(ProgressColumn):
        """Rows per second of this run, from its start (steadier than a sliding window)."""

        def render(self, task: Task) -> Text:
            rate = task.fields.get("rate", 0.0)
            return Text(f"{rate:,.0f} rows/s", style="progress.data.speed")

    class Eta(ProgressColumn):
        def render(self, task: Task) -> Text:
            rate = task.fields.get("rate", 0.0)
            left = max(0.0, (task.total or 0) - task.completed)
            if task.finished:
                return Text("done", style="progress.remaining")
            if not rate:
                return Text("ETA -:--:--", style="progress.remaining")
            secs = int(left / rate)
            return Text(
                f"ETA {secs // 3600}:{secs % 3600 // 60:02d}:{secs % 60:02d}",
                style="progress.remaining",
            )

    return [RowRate(), Eta()]


class JobProgress:
    """Counts rows (the bar's total is an estimate for text inputs until all is read)."""

    def __init__(self, enabled: bool, total: int, done: int, description: str) -> None:
        self.rows = 0
        self.rejected = 0
        self._started = time.perf_counter()
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
        )

        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            *_columns(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task(
            description, total=max(total, done), completed=done, rate=0.0
        )

    def advance(self, rows: int, rejected: int) -> None:
        self.rows += rows
        self.rejected += rejected
        if self._bar is not None:
            elapsed = time.perf_counter() - self._started
            rate = self.rows / elapsed if elapsed > 0 else 0.0
            self._bar.update(self._task, advance=rows, rate=rate)

    def correct_total(self, delta: int) -> None:
        """A text shard turned out to hold ``delta`` more rows than estimated."""
        if self._bar is not None and delta:
            task = self._bar.tasks[0]
            self._bar.update(self._task, total=(task.total or 0) + delta)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
