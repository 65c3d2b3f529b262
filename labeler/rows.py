"""In-memory rows for the Python API: a `datasets.Dataset` or a list of dicts goes into the store as one input and
comes back as the same kind with the label columns added; annotated rows become TRL's prompt/chosen/rejected rows.

Only the pairs layout (prompt/response_a/response_b, or the names `fields` gives) is taken: a TRL chosen/rejected
dataset already holds its preference, and its A/B order in the store is drawn at random, so a label in A/B words
would not name one of its columns.
"""

from collections.abc import Mapping, Sequence

from labeler.errors import UsageError, option
from labeler.formats import layouts
from labeler.formats.sources import Part, _dataset_parts
from labeler.ingestion import FileReport, ingest_part
from labeler.store import FieldMap, Store

ROWS_LABEL = "python:rows"  # the `file` of pairs and quarantined rows that came in as rows
LABEL_COLUMNS = ("pair_id", "label", "label_source", "confidence", "rationale", "judge_id")


def is_dataset(value) -> bool:
    return type(value).__name__ == "Dataset" and type(value).__module__.startswith("datasets")


def is_rows(value) -> bool:
    """A `datasets.Dataset` or a list of dicts (not a path: a store or a file)."""
    return is_dataset(value) or (isinstance(value, list) and all(isinstance(r, Mapping) for r in value))


def _part(rows) -> Part:
    if is_dataset(rows):
        (part,) = _dataset_parts(rows, ROWS_LABEL, None)
        return part
    import pyarrow as pa

    names = list(dict.fromkeys(k for r in rows for k in r))  # every key, first-seen order: rows may differ
    try:
        table = pa.table({k: [r.get(k) for r in rows] for k in names})
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise UsageError(f"rows: a field mixes types across rows ({exc})") from None
    return Part(ROWS_LABEL, "arrow", table=table)


def ingest_rows(store: Store, rows, fields: FieldMap, strict: bool, max_chars: int
                ) -> tuple[FileReport, list[str | None]]:
    """Store the rows as one input: its report and each row's pair id (None: quarantined, see `report.problems`)."""
    part = _part(rows)
    if part.table.num_rows:
        layout = layouts.detect(part.table.column_names, fields)
        if layout != "pairs":
            raise UsageError(f"rows in the {layout} layout already say which response is preferred; annotate takes "
                             f"{fields.prompt}/{fields.response_a}/{fields.response_b} rows (other names: "
                             f"{option('fields')}=FieldMap(...))")
    report = ingest_part(store, part, fields, strict, max_chars)
    ids = store.staged_row_pairs() if part.table.num_rows and not report.empty else {}
    return report, [ids.get(line) for line in range(1, part.table.num_rows + 1)]


def with_labels(rows, pair_ids: list[str | None], labels: Mapping[str, object]):
    """`rows` (same kind) with LABEL_COLUMNS added or replaced from each pair's export row (None where unlabelled)."""
    values = {c: [getattr(labels[p], c) if p in labels else (p if c == "pair_id" else None) for p in pair_ids]
              for c in LABEL_COLUMNS}
    if is_dataset(rows):
        kept = rows.remove_columns([c for c in LABEL_COLUMNS if c in rows.column_names])
        for column in LABEL_COLUMNS:
            kept = kept.add_column(column, values[column])
        return kept
    return [{**row, **{c: values[c][i] for c in LABEL_COLUMNS}} for i, row in enumerate(rows)]


def preference_rows(rows, fields: FieldMap = FieldMap(), min_confidence: float | None = None,
                    columns: Sequence[str] = ()):
    """TRL prompt/chosen/rejected rows from annotated rows (as `with_labels` returns them): A/B labels only,
    model labels below `min_confidence` left out; conversational (assistant messages) when prompts are messages.
    `columns`: more of the rows' columns to keep."""
    listed = rows.to_list() if is_dataset(rows) else list(rows)
    missing = [c for c in ("label", fields.prompt, fields.response_a, fields.response_b) if listed and c not in listed[0]]
    if missing:
        raise UsageError(f"rows have no {', '.join(missing)}: pass rows as annotate returns them")
    out = []
    for row in listed:
        if row["label"] not in ("A", "B"):
            continue
        if (min_confidence is not None and row.get("label_source") != "human"
                and (row.get("confidence") is None or row["confidence"] < min_confidence)):
            continue
        chosen, rejected = row[fields.response_a], row[fields.response_b]
        if row["label"] == "B":
            chosen, rejected = rejected, chosen
        if isinstance(row[fields.prompt], list):
            chosen, rejected = ([{"role": "assistant", "content": x}] for x in (chosen, rejected))
        out.append({"prompt": row[fields.prompt], "chosen": chosen, "rejected": rejected,
                    **{c: row.get(c) for c in columns}})
    if is_dataset(rows):
        from datasets import Dataset

        return Dataset.from_list(out)
    return out
