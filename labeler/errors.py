"""User-facing errors: the CLI prints them as one `Error: ...` line and exits 1.

A message names an option the way its reader passes it: `option("out", "FILE")` is `--out FILE` while a CLI command
runs (`command_line()`) and `out=FILE` from the Python API."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_COMMAND_LINE: ContextVar[bool] = ContextVar("labeler_command_line", default=False)


@contextmanager
def command_line() -> Iterator[None]:
    """Messages raised inside name options as flags (the CLI runs each command in this)."""
    token = _COMMAND_LINE.set(True)
    try:
        yield
    finally:
        _COMMAND_LINE.reset(token)


def option(name: str, value: str | None = None) -> str:
    """`--min-confidence 0.7` on the command line, `min_confidence=0.7` from Python (`name` in Python style)."""
    if _COMMAND_LINE.get():
        flag = "--" + name.replace("_", "-")
        return flag if value is None else f"{flag} {value}"
    return name if value is None else f"{name}={value}"


def flag(name: str) -> str:
    """A switch: `--mixed` on the command line, `mixed=True` from Python."""
    return option(name) if _COMMAND_LINE.get() else f"{name}=True"


class LabelerError(Exception):
    """A problem the user can fix (bad input, missing file, bad option); never a bug."""


class StoreBusy(LabelerError):
    """Another process held the database for longer than the wait; the caller may keep its work and retry."""


class RowError(LabelerError):
    """One input row that cannot become a pair: it goes to quarantine with `field` and `reason`."""

    def __init__(self, field: str | None, reason: str):
        super().__init__(f"field {field or '-'}: {reason}")
        self.field = field
        self.reason = reason


class UsageError(ValueError):
    """A bad option or combination of options (the CLI's `Invalid value`, exit 2), raised before any work."""


class RequestLimitReached(LabelerError):
    """A judge sent the requests `--max-requests` allows: the run stops cleanly, what was stored stays, a rerun
    resumes."""
