"""User-facing errors: the CLI prints them as one `Error: ...` line and exits 1."""


class LabelerError(Exception):
    """A problem the user can fix (bad input, missing file, bad option); never a bug."""


class StoreBusy(LabelerError):
    """Another process held the database for longer than the wait; the caller may keep its work and retry."""
