"""User-facing errors: the CLI prints them as one `Error: ...` line and exits 1."""


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
