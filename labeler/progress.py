"""The one progress helper: rich bars with items/s and ETA (`progress_bar`), silent under --quiet (`silent`).

Stages take `progress: (total) -> context manager yielding advance(n)`; `silent` is the default."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.text import Text


class RateColumn(ProgressColumn):
    def __init__(self, unit: str):
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("--" if speed is None else f"{speed:.2f} {self.unit}/s", style="progress.data.speed")


@contextmanager
def silent(total: int = 0, *_: object) -> Iterator[Callable[[int], None]]:
    """No bar: the default `progress` of every stage (and what --quiet gives)."""
    yield lambda n: None


@contextmanager
def progress_bar(total: int, description: str, unit: str = "pairs", quiet: bool = False,
                 console: Console | None = None) -> Iterator[Callable[[int], None]]:
    """Yield an `advance(n)` callable that moves the bar."""
    if quiet or total == 0:
        with silent() as advance:
            yield advance
        return
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(unit),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    with Progress(*columns, console=console or Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
