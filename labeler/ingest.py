"""Ingest JSONL / Parquet files of pairs into the store. Reading and validation run inside DuckDB."""

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from labeler.errors import LabelerError
from labeler.store import Store
from labeler.store.pairs import FieldMap, IngestCounts

JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
DEFAULT_MAX_CHARS = 200_000


@dataclass
class FileReport:
    path: str
    counts: IngestCounts
    problems: list[tuple] = field(default_factory=list)
    empty: bool = False


def check_path(path: Path) -> str:
    """Return the file's format, or raise a one-line error naming it."""
    if not path.exists():
        raise LabelerError(f"{path}: no such file")
    if path.is_dir():
        raise LabelerError(f"{path}: is a directory, expected a .jsonl or .parquet file")
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    raise LabelerError(f"{path}: unknown file type {suffix!r} (expected .jsonl, .ndjson, .json or .parquet)")


def ingest_file(
    store: Store, path: Path, fields: FieldMap = FieldMap(), strict: bool = False, max_chars: int = DEFAULT_MAX_CHARS
) -> FileReport:
    """Store every good row of one file; bad rows go to quarantine (or, with strict, nothing is stored)."""
    kind = check_path(path)
    label = str(path.resolve())
    if path.stat().st_size == 0:
        return FileReport(path=str(path), counts=IngestCounts(), empty=True)
    try:
        if kind == "parquet":
            _check_parquet_columns(store, path, fields)
        store.stage(path, kind, fields, max_chars)
    except duckdb.Error as exc:
        hint = " (raise LABELER_DUCKDB_MEMORY_LIMIT)" if isinstance(exc, duckdb.OutOfMemoryException) else ""
        raise LabelerError(f"{path}: cannot read {kind}: {str(exc).splitlines()[0]}{hint}") from None
    problems = store.staged_problems(fields.id)
    if strict and problems:
        line, name, reason = problems[0]
        where = f"line {line}" if kind == "jsonl" else f"row {line}"
        more = f" (and {len(problems) - 1}+ more)" if len(problems) > 1 else ""
        raise LabelerError(f"{path}:{line}: {where}, field {name or '-'}: {reason}{more}; nothing stored (--strict)")
    counts = store.commit_staged(label, fields.id)
    return FileReport(path=str(path), counts=counts, problems=problems, empty=counts.rows == 0)


def _check_parquet_columns(store: Store, path: Path, fields: FieldMap) -> None:
    columns = store.parquet_columns(path)
    missing = [name for name in (fields.prompt, fields.response_a, fields.response_b) if name not in columns]
    if missing:
        raise LabelerError(f"{path}: missing column(s) {', '.join(missing)} (columns: {', '.join(columns)})")


def ingest_files(store: Store, paths: list[Path], fields: FieldMap = FieldMap(), strict: bool = False,
                 max_chars: int = DEFAULT_MAX_CHARS) -> list[FileReport]:
    for path in paths:  # check all paths first so a typo in the last one stores nothing
        check_path(path)
    return [ingest_file(store, path, fields, strict, max_chars) for path in paths]
