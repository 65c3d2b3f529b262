"""User-facing errors: the CLI prints them as one `Error: ...` line and exits 1."""


class LabelerError(Exception):
    """A problem the user can fix (bad input, missing file, bad option); never a bug."""
