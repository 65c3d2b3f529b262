"""Ingest pairs into the store: files (JSONL, JSON array, Parquet, CSV), `datasets` folders, cached Hub datasets.

Every input is staged in DuckDB as one JSON object per row; rows of another preference layout (TRL, HH,
UltraFeedback: `labeler.formats.layouts`) are converted to ours in Python first; validation and quarantine then
run inside DuckDB for every input alike.
"""

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from labeler.errors import LabelerError
from labeler.formats import layouts
from labeler.formats.sources import Part, check_regular, file_kind, open_parts
from labeler.store import Store
from labeler.store.pairs import FieldMap, IngestCounts

DEFAULT_MAX_CHARS = 200_000
TABLE_KINDS = {"parquet", "csv", "arrow"}  # every row has every column


@dataclass
class FileReport:
    path: str
    counts: IngestCounts
    problems: list[tuple] = field(default_factory=list)
    empty: bool = False
    layout: str = "pairs"
    skipped: int = 0  # rows that made no pair (ultrafeedback: every rating equal)
    groups: int = 0  # new groups of N responses per prompt (group layouts)
    group_ids: list[str] = field(default_factory=list)  # every group of the input, new or already stored


def check_path(path: Path) -> str:
    """The kind of a local file (jsonl, json-array, parquet, csv), or a one-line error naming it."""
    check_regular(path)
    if not path.exists():
        raise LabelerError(f"{path}: no such file")
    if path.is_dir():
        raise LabelerError(f"{path}: is a directory, expected a file")
    return file_kind(path)


def ingest_part(store: Store, part: Part, fields: FieldMap = FieldMap(), strict: bool = False,
                max_chars: int = DEFAULT_MAX_CHARS, seed: int = 0) -> FileReport:
    """Store every good row of one part; bad rows go to quarantine (or, with strict, nothing is stored).
    `seed` draws the A/B order of pairs whose preference is known (chosen/rejected, ratings)."""
    if part.empty:
        return FileReport(path=part.name, counts=IngestCounts(), empty=True)
    where = "line" if part.kind == "jsonl" else "row"
    found: list = []  # (line, group) of a group layout's rows
    try:
        layout, skipped = _stage(store, part, fields, max_chars, seed, lambda line, group: found.append((line, group)))
    except duckdb.Error as exc:
        hint = " (raise LABELER_DUCKDB_MEMORY_LIMIT)" if isinstance(exc, duckdb.OutOfMemoryException) else ""
        raise LabelerError(f"{part.name}: cannot read {part.kind}: {str(exc).splitlines()[0]}{hint}") from None
    problems = store.staged_problems(fields.id)
    if strict and problems:
        line, name, reason = problems[0]
        more = f" (and {len(problems) - 1}+ more)" if len(problems) > 1 else ""
        raise LabelerError(f"{part.name}:{line}: {where} {line}, field {name or '-'}: {reason}{more}; "
                           "nothing stored (--strict)")
    counts = store.commit_staged(part.label, fields.id)
    groups = store.save_groups(part.label, found) if layout in layouts.GROUP_LAYOUTS else 0
    return FileReport(path=part.name, counts=counts, problems=problems, empty=counts.rows == 0 and not skipped and not found,
                      layout=layout, skipped=skipped, groups=groups,
                      group_ids=list(dict.fromkeys(g.group_id for _, g in found)))


def _stage(store: Store, part: Part, fields: FieldMap, max_chars: int, seed: int, on_group) -> tuple[str, int]:
    """Stage and check a part: (its layout, rows that made no pair). Rows of another layout are converted to ours
    in Python; ours only when a prompt is a message list, which its first check finds at no extra cost."""
    store.stage(part.kind, part.table if part.kind == "arrow" else part.path)
    types = ({f.name: "BLOB" if "binary" in str(f.type) else str(f.type) for f in part.table.schema}
             if part.kind == "arrow" else store.file_column_types(part.kind, part.path)
             if part.kind in TABLE_KINDS else None)
    columns = list(types) if types is not None else store.staged_columns()
    layout = layouts.detect(columns, fields)
    if layout == "pairs" and part.kind in TABLE_KINDS:
        _check_columns(part.name, columns, fields)
        binary = [c for c in (fields.prompt, fields.response_a, fields.response_b) if types.get(c) == "BLOB"]
        if binary:
            raise LabelerError(f"{part.name}: column {binary[0]} is binary (BLOB), not text; write it as a string "
                               "column")
    convert = layouts.converter(layout, fields, max_chars, seed, on_group)
    skipped = 0
    if layout != "pairs" or layouts.MESSAGES in columns:
        skipped = store.convert_staged(convert)
    store.check_staged(fields, max_chars)
    if layout == "pairs" and layouts.MESSAGES not in columns and store.staged_has_lists():
        store.convert_staged(convert)  # `staged` still holds the rows as read
        store.check_staged(fields, max_chars)
    return layout, skipped


def _check_columns(name: str, columns: list[str], fields: FieldMap) -> None:
    missing = [c for c in (fields.prompt, fields.response_a, fields.response_b) if c not in columns]
    if missing:
        raise LabelerError(f"{name}: missing column(s) {', '.join(missing)} (columns: {', '.join(columns)}; "
                           f"expected {layouts.EXPECTED})")


def ingest_file(store: Store, path: Path, fields: FieldMap = FieldMap(), strict: bool = False,
                max_chars: int = DEFAULT_MAX_CHARS, seed: int = 0) -> FileReport:
    """One local file (see `ingest_files` for folders, splits and Hub ids)."""
    check_path(path)
    (part,) = open_parts(path)
    return ingest_part(store, part, fields, strict, max_chars, seed)


def open_inputs(paths: list[Path]) -> list[Part]:
    """Every part of every input, opened before anything is stored, so a typo in the last one stores nothing."""
    return [part for path in paths for part in open_parts(Path(path))]


def ingest_files(store: Store, paths: list[Path], fields: FieldMap = FieldMap(), strict: bool = False,
                 max_chars: int = DEFAULT_MAX_CHARS, seed: int = 0) -> list[FileReport]:
    """Files, `datasets` folders and cached Hub dataset ids (`NAME:SPLIT` for one split): one report per part."""
    return [ingest_part(store, part, fields, strict, max_chars, seed) for part in open_inputs(paths)]
