"""SQL for ingest: stage a file, validate every row in SQL, upsert pairs and gold labels, quarantine the rest."""

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb

from schemas import QuarantineRow

READER_OPTIONS = (
    "columns={'raw': 'VARCHAR'}, delim=chr(1), quote='', escape='', header=false, auto_detect=false,"
    " max_line_size=268435456, ignore_errors=true, store_rejects=true, strict_mode=false,"
    " rejects_table='labeler_reject_errors', rejects_scan='labeler_reject_scans'"
)
TEXT_FIELDS = ("prompt", "response_a", "response_b")
CSV_LENIENT = "ignore_errors=true, null_padding=false, strict_mode=true"
DUPLICATE_KEY_REASON = ("duplicate key (JSON readers disagree on which value counts: Python keeps the last, DuckDB "
                        "the first)")


@dataclass(frozen=True)
class FieldMap:
    prompt: str = "prompt"
    response_a: str = "response_a"
    response_b: str = "response_b"
    id: str = "id"
    label: str = "label"

    def names(self) -> list[str]:
        return [self.prompt, self.response_a, self.response_b, self.id, self.label]


@dataclass
class IngestCounts:
    rows: int = 0
    new_pairs: int = 0
    already_stored: int = 0
    repeated_in_file: int = 0
    quarantined: int = 0
    gold_labels: int = 0
    blank_lines: int = 0
    model_labels: int = 0  # rows whose label_source says `model` (an export read back): stored unlabeled


def json_path(key: str) -> str:
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def stage_jsonl(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Load every physical line of a JSONL file into temp table `staged(line, raw, reader_error)`.

    Lines DuckDB's reader rejects (invalid UTF-8, over-long) come back from its rejects table; the
    remaining lines are renumbered around them so `line` is always the physical line number.
    """
    con.execute("DROP TABLE IF EXISTS labeler_reject_errors; DROP TABLE IF EXISTS labeler_reject_scans")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE staged_lines AS SELECT ordinality AS r, raw "
        f"FROM read_csv(?, {READER_OPTIONS}) WITH ORDINALITY",
        [str(path)],
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE staged_rejects AS SELECT DISTINCT line, error_type, error_message "
        "FROM labeler_reject_errors"
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE staged AS
        WITH rej AS (SELECT line, row_number() OVER (ORDER BY line) AS k FROM staged_rejects)
        SELECT s.r + coalesce((SELECT max(k) FROM rej WHERE rej.line - rej.k < s.r), 0) AS line,
               s.raw, NULL::VARCHAR AS reader_error, NULL::VARCHAR AS reader_field
        FROM staged_lines s
        UNION ALL
        SELECT line, NULL, CASE WHEN error_type = 'INVALID ENCODING' THEN 'invalid UTF-8'
                                ELSE lower(replace(error_type, '_', ' ')) END, NULL
        FROM staged_rejects
        """
    )


def _fresh(base: str, taken: list[str]) -> str:
    """A name none of `taken` has (DuckDB compares names case-insensitively): the staging SQL's own names never
    collide with an input's column, whatever the input calls its columns."""
    lower = {c.lower() for c in taken}
    name, i = base, 0
    while name.lower() in lower:
        i += 1
        name = f"{base}_{i}"
    return name


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _stage_rows(con: duckdb.DuckDBPyConnection, source: str, params: list, columns: list[str], row: str,
                error: str | None = None, field: str | None = None) -> None:
    """`staged` from a query whose rows carry their 1-based number in column `row` (a name no input column has);
    `error`/`field`: a problem of every row (a duplicate header)."""
    alias = _quote(_fresh("labeler_rows", [*columns, row]))
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE staged AS SELECT {alias}.{_quote(row)} AS line, "
        f"json_merge_patch(to_json({alias}), '{{\"{row}\": null}}')::VARCHAR AS raw, ?::VARCHAR AS reader_error, "
        f"?::VARCHAR AS reader_field FROM ({source}) {alias}",
        [error, field, *params],
    )


def _numbered(reader: str, columns: list[str], row: str) -> str:
    """`reader` (a table function of one `?` path) with each row's 1-based number in column `row`. Every column is
    named by position, so an input column called `ordinality` or `file_row_number` stays the input's."""
    if reader.startswith("read_parquet") and "file_row_number" not in {c.lower() for c in columns}:
        return (f"SELECT * EXCLUDE (file_row_number), file_row_number + 1 AS {_quote(row)} "
                f"FROM {reader[:-1]}, file_row_number=true)")
    alias = _quote(_fresh("labeler_numbered", [*columns, row]))
    names = ", ".join(_quote(c) for c in [*columns, row])
    return f"SELECT * FROM {reader} WITH ORDINALITY AS {alias}({names})"


def stage_parquet(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Each Parquet row becomes one JSON object, numbered from 1, in temp table `staged`."""
    columns = file_columns(con, "parquet", path)
    row = _fresh("__labeler_row", columns)
    _stage_rows(con, _numbered("read_parquet(?)", columns, row), [str(path)], columns, row)


def stage_csv(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Each CSV data row (header required; every value read as text) becomes one JSON object. A row with too few
    or too many values is staged as its line with the reader's error, so it is quarantined and the rest kept; a
    header that names a column twice makes every row a duplicate-key row, as in JSON."""
    columns = file_columns(con, "csv", path)
    row = _fresh("__labeler_row", columns)
    header = con.execute(f"SELECT * FROM read_csv(?, header=false, all_varchar=true, {CSV_LENIENT}) LIMIT 1",
                         [str(path)]).fetchone() or ()
    names = [str(h).lower() for h in header]
    repeated = next((str(h) for i, h in enumerate(header) if str(h).lower() in names[:i]), None)
    error = DUPLICATE_KEY_REASON if repeated else None
    con.execute("DROP TABLE IF EXISTS labeler_reject_errors; DROP TABLE IF EXISTS labeler_reject_scans")
    reader = (f"read_csv(?, header=true, all_varchar=true, {CSV_LENIENT}, store_rejects=true, "
              "rejects_table='labeler_reject_errors', rejects_scan='labeler_reject_scans')")
    _stage_rows(con, _numbered(reader, columns, row), [str(path)], columns, row, error, repeated)
    _add_rejected_rows(con)


def _add_rejected_rows(con: duckdb.DuckDBPyConnection) -> None:
    """Rows the CSV reader rejected (too few or too many values) join `staged` at their place: the good rows after
    each are renumbered, so every row keeps its data-row number (the header is not a row)."""
    con.execute("CREATE OR REPLACE TEMP TABLE staged_rejects AS SELECT DISTINCT (line - 1)::BIGINT AS line, "
                "error_type::VARCHAR AS error_type, csv_line::VARCHAR AS csv_line FROM labeler_reject_errors")
    if not con.execute("SELECT count(*) FROM staged_rejects").fetchone()[0]:
        return
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE staged AS
        WITH rej AS (SELECT line, row_number() OVER (ORDER BY line) AS k FROM staged_rejects)
        SELECT s.line::BIGINT + coalesce((SELECT max(k) FROM rej WHERE rej.line - rej.k < s.line), 0) AS line,
               s.raw, s.reader_error, s.reader_field
        FROM staged s
        UNION ALL
        SELECT line, csv_line, CASE error_type WHEN 'MISSING COLUMNS' THEN 'too few columns for the header'
                                               WHEN 'TOO MANY COLUMNS' THEN 'too many columns for the header'
                                               ELSE lower(replace(error_type, '_', ' ')) END, NULL
        FROM staged_rejects
        """
    )


def stage_json_array(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """A `.json` file holding one array of objects: each element is a row, numbered from 1."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE staged AS SELECT ordinality AS line, json::VARCHAR AS raw, "
        "NULL::VARCHAR AS reader_error, NULL::VARCHAR AS reader_field "
        "FROM read_json_objects(?, format='array') WITH ORDINALITY",
        [str(path)],
    )


def stage_arrow(con: duckdb.DuckDBPyConnection, table) -> None:
    """A pyarrow Table (a `datasets` split, memory-mapped) scanned in place: each row one JSON object."""
    import pyarrow as pa

    columns = table.column_names
    row = _fresh("__labeler_row", columns)
    numbered = table.append_column(row, pa.array(range(1, table.num_rows + 1), pa.int64()))
    con.register("labeler_arrow", numbered)
    try:
        _stage_rows(con, "SELECT * FROM labeler_arrow", [], columns, row)
    finally:
        con.unregister("labeler_arrow")


STAGERS = {"jsonl": stage_jsonl, "parquet": stage_parquet, "csv": stage_csv, "json-array": stage_json_array}


def staged_columns(con: duckdb.DuckDBPyConnection, sample: int = 1000) -> list[str]:
    """The keys of the first `sample` JSON objects staged, in first-seen order (what layout detection reads)."""
    rows = con.execute(
        """
        SELECT k FROM (
            SELECT unnest(json_keys(j)) AS k, line FROM (
                SELECT line, CASE WHEN json_valid(raw) THEN raw END AS j
                FROM (SELECT line, raw FROM staged ORDER BY line LIMIT ?))
            WHERE json_type(j) = 'OBJECT')
        GROUP BY k ORDER BY min(line), k
        """,
        [sample],
    ).fetchall()
    return [r[0] for r in rows]


def staged_has_lists(con: duckdb.DuckDBPyConnection) -> bool:
    """Did validation find a text field holding an array (a message list for Python to convert)? Reading it from
    the checked rows costs nothing on the usual file, which has none."""
    return con.execute(
        "SELECT count(*) > 0 FROM checked_ids WHERE reason = 'must be a string, got array'"
    ).fetchall()[0][0]


def convert_staged(con: duckdb.DuckDBPyConnection, convert, chunk: int = 20_000) -> int:
    """Replace each staged JSON object by the rows `convert(dict)` makes of it (same line number; a RowError puts
    the original line in quarantine with the error's field). Lines that are not JSON objects stay as they are, for
    validation to report. Returns the number of objects that made no row."""
    import pyarrow as pa

    from labeler.errors import RowError

    names = ("line", "raw", "reader_error", "reader_field")
    con.execute("CREATE OR REPLACE TEMP TABLE staged_converted "
                "(line BIGINT, raw VARCHAR, reader_error VARCHAR, reader_field VARCHAR)")
    last, skipped = -1, 0
    while rows := con.execute(f"SELECT {', '.join(names)} FROM staged WHERE line > ? ORDER BY line LIMIT ?",
                              [last, chunk]).fetchall():
        out = []
        for line, raw, error, field in rows:
            try:
                row = json.loads(raw) if raw is not None and error is None else None
            except ValueError:
                row = None
            if not isinstance(row, dict):
                out.append((line, raw, error, field))
                continue
            try:
                made = convert(row)
            except RowError as exc:
                out.append((line, raw, exc.reason, exc.field))
                continue
            try:  # Python reads `Infinity`/`NaN`, which no JSON reader (nor an export) may see again
                made = [json.dumps(r, ensure_ascii=False, allow_nan=False) for r in made]
            except ValueError:
                out.append((line, raw, "holds a number that is not finite (Infinity or NaN), which JSON cannot "
                                       "hold", None))
                continue
            skipped += not made
            out.extend((line, r, None, None) for r in made)
        batch = pa.table(dict(zip(names, map(list, zip(*out))))) if out else None
        if batch is not None:
            con.register("labeler_converted", batch)
            con.execute("INSERT INTO staged_converted SELECT * FROM labeler_converted")
            con.unregister("labeler_converted")
        last = rows[-1][0]
    con.execute("CREATE OR REPLACE TEMP TABLE staged AS SELECT * FROM staged_converted ORDER BY line")
    return skipped


def file_columns(con: duckdb.DuckDBPyConnection, kind: str, path: Path) -> list[str]:
    """The columns of a Parquet file or a CSV header."""
    return list(file_column_types(con, kind, path))


def file_column_types(con: duckdb.DuckDBPyConnection, kind: str, path: Path) -> dict[str, str]:
    reader = "read_parquet(?)" if kind == "parquet" else f"read_csv(?, header=true, all_varchar=true, {CSV_LENIENT})"
    return {row[0]: row[1] for row in con.execute(f"DESCRIBE SELECT * FROM {reader}", [str(path)]).fetchall()}


MAX_DEPTH = 64
JSON_STRING = r'"(?:[^"\\]|\\.)*"'  # a string literal, to look for bare number tokens outside of strings
# whitespace and the characters that show as nothing (zero-width space/joiners, word joiner, BOM, soft hyphen)
BLANK = "[\\s\u200b-\u200d\u2060\ufeff\u00ad\u180e]*"
# MAX_DEPTH + 1 containers opened in a row (an object's key may come between): deeper is quarantined, not parsed
DEEP_NESTING = r'(\{\s*"[^"]*"\s*:\s*|\[\s*){' + str(MAX_DEPTH + 1) + '}'
DUPLICATE_KEY = "list_filter(json_keys(raw), lambda k, i: list_position(json_keys(raw), k) < i)[1]"
# what a row holds besides the mapped fields: keys, punctuation and the extra fields, JSON-encoded
EXTRA_CHARS = "length(raw) - " + " - ".join(f"coalesce(length(json_extract(raw, ${f})::VARCHAR), 0)"
                                           for f in ("prompt", "response_a", "response_b", "id", "label"))


def _text_check(field: str) -> str:
    p = "$" + field
    return f"""CASE
        WHEN json_type(raw, {p}) IS NULL THEN 'missing field'
        WHEN json_type(raw, {p}) = 'NULL' THEN 'is null'
        WHEN json_type(raw, {p}) <> 'VARCHAR' THEN 'must be a string, got ' || lower(json_type(raw, {p}))
        WHEN regexp_full_match(json_extract_string(raw, {p}), '{BLANK}') THEN 'is empty'
        WHEN strpos(json_extract_string(raw, {p}), chr(0)) > 0 THEN 'contains a NUL byte'
        WHEN length(json_extract_string(raw, {p})) > $max_chars
            THEN 'too long: ' || length(json_extract_string(raw, {p})) || ' characters (limit ' || $max_chars || ')'
    END"""


def _second_pass(con: duckdb.DuckDBPyConnection, names: dict, params: dict) -> None:
    """Checks of rows that passed the first pass, in their own query: run beside the field checks, their copies of a
    10 MB field ran DuckDB out of its memory limit."""
    checks = [
        ("NULL", f"""CASE WHEN length(raw) - length(replace(replace(raw, '[', ''), '{{', '')) > {MAX_DEPTH}
                          AND regexp_matches(raw, '{DEEP_NESTING}') THEN 'nested deeper than {MAX_DEPTH} levels' END"""),
        (DUPLICATE_KEY, "CASE WHEN len(list_distinct(json_keys(raw))) < len(json_keys(raw)) THEN "
                        f"'{DUPLICATE_KEY_REASON}' END"),
        ("NULL", f"""CASE WHEN regexp_matches(raw, '(Infinity|NaN)')
                          AND regexp_matches(regexp_replace(raw, '{JSON_STRING}', '', 'g'), '(Infinity|NaN)')
                          THEN 'holds a number that is not finite (Infinity or NaN), which JSON cannot hold' END"""),
        (f"'{names['response_b']}'", "CASE WHEN json_extract_string(raw, $response_a) = "
                                     "json_extract_string(raw, $response_b) THEN 'identical to the other response' END"),
        ("NULL", f"""CASE WHEN length(raw) > $max_chars AND ({EXTRA_CHARS}) > $max_chars
            THEN 'extra fields too large: ' || ({EXTRA_CHARS}) || ' characters (limit ' || $max_chars || ')' END"""),
    ]
    field_sql = " ".join(f"WHEN ({check}) IS NOT NULL THEN {name}" for name, check in checks)
    reason_sql = "coalesce(" + ", ".join(f"({check})" for _, check in checks) + ")"
    con.execute(
        f"""
        UPDATE checked_reasons SET reason = found.reason, field = found.field
        FROM (SELECT line, {reason_sql} AS reason, CASE {field_sql} END AS field
              FROM checked_reasons WHERE reason IS NULL AND raw IS NOT NULL) found
        WHERE checked_reasons.line = found.line AND found.reason IS NOT NULL
        """,
        {k: v for k, v in params.items() if k != "mapped"},
    )


def validate_staged(con: duckdb.DuckDBPyConnection, fields: FieldMap, max_chars: int) -> None:
    """Build temp table `checked`: one row per non-blank line with its values, or the first problem found."""
    names = dict(prompt=fields.prompt, response_a=fields.response_a, response_b=fields.response_b,
                 id=fields.id, label=fields.label)
    params = {k: json_path(v) for k, v in names.items()} | {"max_chars": max_chars,
                                                             "mapped": [*fields.names(), "prompt_messages"]}
    checks = [
        ("reader_field", "reader_error"),
        ("NULL", "CASE WHEN raw IS NULL AND reader_error IS NULL THEN 'invalid JSON' END"),
        ("NULL", "CASE WHEN json_type(raw) <> 'OBJECT' THEN 'not a JSON object' END"),
        *[(f"'{names[f]}'", _text_check(f)) for f in TEXT_FIELDS],
        (f"'{names['id']}'", """CASE
            WHEN json_type(raw, $id) IN ('NULL') OR json_type(raw, $id) IS NULL THEN NULL
            WHEN json_type(raw, $id) NOT IN ('VARCHAR', 'UBIGINT', 'BIGINT') THEN 'must be a string or integer, got ' || lower(json_type(raw, $id))
            WHEN regexp_full_match(json_extract_string(raw, $id), '\\s*') THEN 'is empty' END"""),
        (f"'{names['label']}'", """CASE
            WHEN json_type(raw, $label) IS NULL OR json_type(raw, $label) = 'NULL' THEN NULL
            WHEN upper(trim(coalesce(json_extract_string(raw, $label), ''))) NOT IN ('A', 'B', 'TIE')
                THEN 'must be "A", "B" or "tie", got ' || left(json_extract(raw, $label)::VARCHAR, 40) END"""),
    ]
    field_sql = " ".join(f"WHEN ({check}) IS NOT NULL THEN {name}" for name, check in checks)
    reason_sql = "coalesce(" + ", ".join(f"({check})" for _, check in checks) + ")"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE checked_reasons AS
        SELECT line, text AS raw, {reason_sql} AS reason, CASE {field_sql} END AS field
        FROM (SELECT line, reader_error, reader_field, CASE WHEN json_valid(raw) THEN raw END AS raw, raw AS text
              FROM staged) WHERE reader_error IS NOT NULL
            OR NOT regexp_full_match(coalesce(text, ''), '\\s*')  -- whitespace-only lines are blank
        """,
        {k: v for k, v in params.items() if k != "mapped"},
    )
    _second_pass(con, names, params)
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE checked AS
        SELECT line, text AS raw, reason, field,
            json_extract_string(raw, $prompt) AS prompt,
            json_extract_string(raw, $response_a) AS response_a,
            json_extract_string(raw, $response_b) AS response_b,
            -- a labeler export read back: its model labels are a judge's, never human gold
            CASE WHEN json_extract_string(raw, '$.label_source') = 'model' THEN NULL
                 ELSE CASE upper(trim(json_extract_string(raw, $label))) WHEN '' THEN NULL WHEN 'TIE' THEN 'tie'
                      ELSE upper(trim(json_extract_string(raw, $label))) END END AS label,
            json_extract_string(raw, '$.label_source') = 'model'
                AND nullif(trim(json_extract_string(raw, $label)), '') IS NOT NULL AS model_label,
            CASE WHEN json_type(raw, '$.prompt_messages') = 'ARRAY' THEN json_extract(raw, '$.prompt_messages')
                 END AS prompt_messages,
            sha256(json_array(json_extract_string(raw, $prompt), json_extract_string(raw, $response_a),
                              json_extract_string(raw, $response_b))::VARCHAR) AS content_hash,
            trim(json_extract_string(raw, $id)) AS given_id,
            CASE WHEN json_type(raw, '$.source') = 'VARCHAR' THEN json_extract_string(raw, '$.source') END AS source,
            CASE WHEN json_type(raw, '$.category') = 'VARCHAR' THEN json_extract_string(raw, '$.category') END AS category,
            CASE WHEN raw IS NOT NULL THEN to_json(map_from_entries(
                [(k, json_extract(raw, '$."' || replace(k, '"', '\\"') || '"')) FOR k IN json_keys(raw)
                 IF NOT list_contains($mapped, k)])) END AS extra
        FROM (SELECT * EXCLUDE (raw), raw AS text, CASE WHEN reason IS NULL THEN raw END AS raw FROM checked_reasons)
        """,
        {k: v for k, v in params.items() if k != "max_chars"},
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE checked_ids AS
        SELECT *, coalesce(given_id, left(content_hash, 16)) AS pair_id FROM checked
        """
    )


def resolve_staged(con: duckdb.DuckDBPyConnection) -> None:
    """Temp table `resolved`: valid rows with their id conflicts (within the file, or against the store)."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE resolved AS
        WITH ok AS (
            SELECT *, row_number() OVER (PARTITION BY pair_id ORDER BY line) AS nth,
                   first_value(content_hash) OVER (PARTITION BY pair_id ORDER BY line) AS first_hash,
                   first_value(line) OVER (PARTITION BY pair_id ORDER BY line) AS first_line
            FROM checked_ids WHERE reason IS NULL
        )
        SELECT ok.*, p.content_hash AS stored_hash, p.source_file AS stored_file, p.source_line AS stored_line,
            CASE
                WHEN ok.content_hash <> ok.first_hash
                    THEN 'duplicate id with different content (first seen at line ' || ok.first_line || ')'
                WHEN p.pair_id IS NOT NULL AND p.content_hash <> ok.content_hash
                    THEN 'id already stored with different content (from ' || p.source_file || ':' || p.source_line || ')'
            END AS conflict
        FROM ok LEFT JOIN pairs p USING (pair_id)
        """
    )


def commit_staged(con: duckdb.DuckDBPyConnection, file_label: str, id_field: str) -> IngestCounts:
    """Move resolved rows into the store (call inside a transaction). Returns what happened."""
    counts = IngestCounts()
    counts.rows = con.execute("SELECT count(*) FROM checked_ids").fetchone()[0]
    counts.blank_lines = con.execute("SELECT count(*) FROM staged").fetchone()[0] - counts.rows
    counts.new_pairs = con.execute(
        """
        INSERT INTO pairs (pair_id, prompt, response_a, response_b, content_hash, source, category, extra,
                           source_file, source_line, prompt_messages)
        SELECT pair_id, prompt, response_a, response_b, content_hash, source, category, extra, $file, line,
               prompt_messages
        FROM resolved WHERE conflict IS NULL AND nth = 1 AND stored_hash IS NULL
        """,
        {"file": file_label},
    ).fetchone()[0]
    counts.already_stored = con.execute(
        "SELECT count(*) FROM resolved WHERE conflict IS NULL AND nth = 1 AND stored_hash IS NOT NULL"
    ).fetchone()[0]
    counts.repeated_in_file = con.execute(
        "SELECT count(*) FROM resolved WHERE conflict IS NULL AND nth > 1"
    ).fetchone()[0]
    counts.gold_labels = con.execute(
        """
        INSERT OR IGNORE INTO gold_labels (pair_id, label, annotator, origin)
        SELECT DISTINCT ON (pair_id) pair_id, label, 'file', $file FROM resolved
        WHERE conflict IS NULL AND label IS NOT NULL ORDER BY pair_id, line
        """,
        {"file": file_label},
    ).fetchone()[0]
    counts.model_labels = con.execute(
        "SELECT count(*) FROM resolved WHERE conflict IS NULL AND model_label"
    ).fetchone()[0]
    counts.quarantined = con.execute(
        "SELECT (SELECT count(*) FROM checked_ids WHERE reason IS NOT NULL)"
        " + (SELECT count(*) FROM resolved WHERE conflict IS NOT NULL)"
    ).fetchone()[0]
    con.execute(
        """
        INSERT OR IGNORE INTO quarantine (file, line, field, reason, raw, raw_hash)
        SELECT $file, line, field, reason, left(raw, 2000), sha256(coalesce(raw, '')) FROM (
            SELECT line, field, reason, raw FROM checked_ids WHERE reason IS NOT NULL
            UNION ALL
            SELECT line, $id_field, conflict, raw FROM resolved WHERE conflict IS NOT NULL
        )
        """,
        {"file": file_label, "id_field": id_field},
    )
    return counts


def quarantine_rows(con: duckdb.DuckDBPyConnection, file_label: str | None = None) -> list[QuarantineRow]:
    """Every quarantined row (of one file, when given), by file and line."""
    rows = con.execute(
        "SELECT file, line, field, reason, left(raw, 2000) FROM quarantine WHERE $file IS NULL OR file = $file "
        "ORDER BY file, line", {"file": file_label}).fetchall()
    return [QuarantineRow(**dict(zip(QuarantineRow.model_fields, row))) for row in rows]


def quarantine_for_file(con: duckdb.DuckDBPyConnection, file_label: str) -> list[tuple]:
    return con.execute(
        "SELECT file, line, field, reason, raw FROM quarantine WHERE file = ? ORDER BY line", [file_label]
    ).fetchall()


def staged_problems(con: duckdb.DuckDBPyConnection, id_field: str, limit: int = 5) -> list[tuple]:
    """The first problems of the staged file (for --strict), before anything is written."""
    return con.execute(
        """
        SELECT line, field, reason FROM checked_ids WHERE reason IS NOT NULL
        UNION ALL SELECT line, ?, conflict FROM resolved WHERE conflict IS NOT NULL
        ORDER BY line LIMIT ?
        """,
        [id_field, limit],
    ).fetchall()
