"""Rich progress bars with items/s and ETA; silent under --quiet."""

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
def progress_bar(total: int, description: str, unit: str = "pairs", quiet: bool = False,
                 console: Console | None = None) -> Iterator[Callable[[int], None]]:
    """Yield an `advance(n)` callable that moves the bar."""
    if quiet or total == 0:
        yield lambda n: None
        return
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(unit),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    with Progress(*columns, console=console or Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
