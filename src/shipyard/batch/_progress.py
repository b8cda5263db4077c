"""A Rich progress bar in rows, with rows/s and ETA; a no-op when switched off."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.progress import Task
    from rich.text import Text

__all__ = ["JobProgress", "bar_width", "short_description"]


#: Widest description shown; a long model name is cut with an ellipsis.
DESCRIPTION_WIDTH = 20
_MAX_BAR = 40
_MIN_BAR = 5


def short_description(description: str) -> str:
    if len(description) <= DESCRIPTION_WIDTH:
        return description
    return description[: DESCRIPTION_WIDTH - 1] + "\u2026"


def _widths(total: int, description: str) -> int:
    """Width of everything but the bar, for a job of ``total`` rows (gaps included)."""
    # 160,000/200,000, with room for a text input holding more rows than estimated.
    count = 2 * len(f"{total * 4:,}") + 1
    rate = len("9,999,999 rows/s")
    eta = len("ETA 0:00:00")
    # One space between the five columns.
    return len(short_description(description)) + count + rate + eta + 4


def bar_width(console_width: int, total: int, description: str) -> int:
    """The bar shrinks first, so the row counts, rate and ETA fit on one line."""
    return max(_MIN_BAR, min(_MAX_BAR, console_width - _widths(total, description) - 1))


def _columns() -> list[Any]:
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RowCount(ProgressColumn):
        """``done/total`` with thousands separators, like the rate beside it."""

        def render(self, task: Task) -> Text:
            total = f"{int(task.total):,}" if task.total is not None else "?"
            return Text(f"{int(task.completed):,}/{total}", style="progress.download")

    class RowRate(ProgressColumn):
        """Rows per second of this run, from its start (steadier than a sliding window)."""

        def render(self, task: Task) -> Text:
            rate = task.fields.get("rate", 0.0)
            # Millions past 9,999,999 (a resumed or tiny job), so the width stays bounded.
            shown = f"{rate:,.0f}" if rate < 10_000_000 else f"{rate / 1e6:,.0f}M"
            return Text(f"{shown} rows/s", style="progress.data.speed")

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

    return [RowCount(), RowRate(), Eta()]


class JobProgress:
    """Counts rows (the bar's total is an estimate for text inputs until all is read)."""

    def __init__(self, enabled: bool, total: int, done: int, description: str) -> None:
        self.rows = 0
        self.rejected = 0
        #: Rows per second since the model was ready (the bar's figure and the summary's).
        self.rate = 0.0
        self._started = time.perf_counter()
        self._bar: Any = None
        self._task: Any = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        console = Console(stderr=True)
        total = max(total, done)
        # Fits 80 columns: a short description, compact counts, no elapsed time (the
        # summary prints it), and a bar as wide as what is left.
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=bar_width(console.width, total, description)),
            *_columns(),
            console=console,
            transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task(
            short_description(description), total=total, completed=done, rate=0.0
        )

    def advance(self, rows: int, rejected: int) -> None:
        self.rows += rows
        self.rejected += rejected
        elapsed = time.perf_counter() - self._started
        self.rate = self.rows / elapsed if elapsed > 0 else 0.0
        if self._bar is not None:
            self._bar.update(self._task, advance=rows, rate=self.rate)

    def correct_total(self, delta: int) -> None:
        """A text shard turned out to hold ``delta`` more rows than estimated."""
        if self._bar is not None and delta:
            task = self._bar.tasks[0]
            self._bar.update(self._task, total=(task.total or 0) + delta)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
