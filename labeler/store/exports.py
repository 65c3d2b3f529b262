"""SQL for `labeler export`: one row per labelled pair (human verdicts outrank model labels), its provenance and
the input's extra fields as columns; or TRL preference rows (`--dpo`), conversational when any prompt was.
Written by DuckDB's COPY (JSONL, Parquet) or handed over as an Arrow table (a `datasets` folder)."""

import json
from pathlib import Path

import duckdb

from labeler.errors import LabelerError
from labeler.store.rules import HUMAN, LATEST, REVIEWED
from schemas import ExportRow

MESSAGES_TYPE = '[{"role": "VARCHAR", "content": "VARCHAR"}]'
DPO_COLUMNS = ("prompt", "chosen", "rejected")
FIXED_COLUMNS = [c for c in ExportRow.model_fields]
KEPT_AS_COLUMNS = {"source", "category"}  # also in `extra`; exported once


def _labelled(min_confidence: float | None) -> str:
    """Every labelled pair with its label and provenance; `extra` rides along for the extra-field columns."""
    conf = "" if min_confidence is None else f"AND (r.pair_id IS NOT NULL OR l.confidence >= {float(min_confidence)})"
    return f"""
        WITH latest AS ({LATEST}), human AS ({HUMAN}), reviewed AS ({REVIEWED}),
        versions AS (SELECT DISTINCT ON (judge_id) judge_id, version FROM judges ORDER BY judge_id, created_at DESC)
        SELECT p.pair_id, p.prompt, from_json(p.prompt_messages, '{MESSAGES_TYPE}') AS prompt_messages,
               p.response_a, p.response_b,
               CASE WHEN r.pair_id IS NOT NULL THEN h.label ELSE l.label END AS label,
               CASE WHEN r.pair_id IS NOT NULL THEN 'human' ELSE 'model' END AS label_source,
               -- the label's own numbers: the model's on a model label, none on a human one
               CASE WHEN r.pair_id IS NULL THEN l.confidence END AS confidence,
               CASE WHEN r.pair_id IS NULL THEN l.rationale END AS rationale,
               CASE WHEN r.pair_id IS NULL THEN l.votes_a END AS votes_a,
               CASE WHEN r.pair_id IS NULL THEN l.votes_b END AS votes_b,
               CASE WHEN r.pair_id IS NULL THEN l.order_consistent END AS order_consistent,
               CASE WHEN r.pair_id IS NULL THEN l.created_at END AS labeled_at,
               -- the latest model judgment, on every row that has one, kept apart
               l.label AS model_label, l.confidence AS model_confidence, l.rationale AS model_rationale,
               l.votes_a AS model_votes_a, l.votes_b AS model_votes_b, l.order_consistent AS model_order_consistent,
               l.judge_id, v.version AS judge_version, l.judge_key, l.mode, l.samples, l.seed, l.template_hash,
               l.created_at AS model_labeled_at, p.source, p.category, p.extra
        FROM pairs p LEFT JOIN latest l USING (pair_id) LEFT JOIN human h USING (pair_id)
             LEFT JOIN reviewed r USING (pair_id) LEFT JOIN versions v ON v.judge_id = l.judge_id
        WHERE CASE WHEN r.pair_id IS NOT NULL THEN h.label ELSE l.label END IN ('A', 'B', 'tie') {conf}
        ORDER BY p.created_at, p.source_file, p.source_line
    """


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _extra_columns(con: duckdb.DuckDBPyConnection, labelled: str) -> tuple[str, list[str]]:
    """(the JSON structure of the exported pairs' `extra`, their keys), `source`/`category` left out."""
    ((structure,),) = con.execute(f"SELECT json_group_structure(extra) FROM ({labelled})").fetchall()
    fields = json.loads(structure) if structure else {}
    if not isinstance(fields, dict):  # only empty objects: the structure is the string "JSON", not an object
        return structure, []
    return structure, [k for k in fields if k not in KEPT_AS_COLUMNS]


def _plain_query(con: duckdb.DuckDBPyConnection, min_confidence: float | None) -> tuple[str, list[str]]:
    """The plain export and its columns: the fixed ones, then one per extra input field (`input_<name>` where the
    name is taken)."""
    labelled = _labelled(min_confidence)
    structure, keys = _extra_columns(con, labelled)
    fixed = ", ".join(_quote(c) for c in FIXED_COLUMNS)
    if not keys:
        return f"SELECT {fixed} FROM ({labelled})", list(FIXED_COLUMNS)
    names = [f"input_{k}" if k in FIXED_COLUMNS else k for k in keys]
    extras = ", ".join(f"x.{_quote(k)} AS {_quote(n)}" for k, n in zip(keys, names))
    literal = structure.replace("'", "''")
    query = (f"SELECT {fixed}, {extras} FROM (SELECT *, json_transform(extra, '{literal}') AS x "
             f"FROM ({labelled}))")
    return query, [*FIXED_COLUMNS, *names]


def _dpo_query(con: duckdb.DuckDBPyConnection, base: str, extra: list[str]) -> str:
    """TRL preference rows of the A/B labels (ties have no chosen). Conversational (prompt as messages, chosen and
    rejected as one assistant message) when any exported prompt was given as messages: a column has one type."""
    ((conversational,),) = con.execute(
        f"SELECT coalesce(bool_or(prompt_messages IS NOT NULL), false) FROM ({base}) WHERE label IN ('A', 'B')"
    ).fetchall()
    chosen = "CASE WHEN label = 'A' THEN response_a ELSE response_b END"
    rejected = "CASE WHEN label = 'A' THEN response_b ELSE response_a END"
    if conversational:
        prompt = "coalesce(prompt_messages, [{'role': 'user', 'content': prompt}])"
        chosen, rejected = (f"[{{'role': 'assistant', 'content': {x}}}]" for x in (chosen, rejected))
    else:
        prompt = "prompt"
    more = "".join(f", {_quote(c)}" for c in extra)
    return (f"SELECT {prompt} AS prompt, {chosen} AS chosen, {rejected} AS rejected{more} "
            f"FROM ({base}) WHERE label IN ('A', 'B')")


def export_query(con: duckdb.DuckDBPyConnection, dpo: bool, min_confidence: float | None,
                 columns: list[str] | None = None) -> str:
    """The export's SELECT. `columns`: the plain columns to keep (in this order), or the ones added to a DPO row."""
    base, available = _plain_query(con, min_confidence)
    unknown = [c for c in columns or [] if c not in available]
    if unknown:
        raise LabelerError(f"--columns: no column {', '.join(map(repr, unknown))} "
                           f"(columns: {', '.join(available)})")
    if dpo:
        return _dpo_query(con, base, [c for c in columns or [] if c not in DPO_COLUMNS])
    if columns:
        return f"SELECT {', '.join(_quote(c) for c in columns)} FROM ({base})"
    return base


def export_rows(con: duckdb.DuckDBPyConnection, min_confidence: float | None) -> list[ExportRow]:
    rows = con.execute(_plain_query(con, min_confidence)[0])
    names = [d[0] for d in rows.description]
    return [ExportRow(**dict(zip(names, row))) for row in rows.fetchall()]


def copy_export(con: duckdb.DuckDBPyConnection, out: Path, fmt: str, dpo: bool, min_confidence: float | None,
                columns: list[str] | None = None) -> int:
    """Write the export with DuckDB's COPY (no Python loop over rows); returns the row count."""
    query = export_query(con, dpo, min_confidence, columns)
    options = "FORMAT parquet" if fmt == "parquet" else "FORMAT json"
    con.execute(f"COPY ({query}) TO '{_sql_path(out)}' ({options})")
    return con.execute(f"SELECT count(*) FROM ({query})").fetchone()[0]


def export_arrow(con: duckdb.DuckDBPyConnection, dpo: bool, min_confidence: float | None,
                 columns: list[str] | None = None):
    """The export as a pyarrow Table (for `datasets`)."""
    return con.sql(export_query(con, dpo, min_confidence, columns)).to_arrow_table()


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
