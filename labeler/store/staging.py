"""SQL for staging an input: each row of a file (JSONL, JSON array, Parquet, CSV) or an Arrow table becomes one JSON
object in temp table `staged(line, raw, reader_error, reader_field)`; rows of another layout are converted there.
The staging SQL's own names never collide with an input's columns (`_fresh`)."""

import json
from pathlib import Path

import duckdb

READER_OPTIONS = (
    "columns={'raw': 'VARCHAR'}, delim=chr(1), quote='', escape='', header=false, auto_detect=false,"
    " max_line_size=268435456, ignore_errors=true, store_rejects=true, strict_mode=false,"
    " rejects_table='labeler_reject_errors', rejects_scan='labeler_reject_scans'"
)
CSV_LENIENT = "ignore_errors=true, null_padding=false, strict_mode=true"
DUPLICATE_KEY_REASON = ("duplicate key (JSON readers disagree on which value counts: Python keeps the last, DuckDB "
                        "the first)")


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
