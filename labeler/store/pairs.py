"""SQL for ingest: validate every staged row (`staging.py`) in SQL, upsert pairs and gold labels, quarantine the rest."""

from dataclasses import dataclass

import duckdb

from labeler.store.staging import DUPLICATE_KEY_REASON
from schemas import QuarantineRow

TEXT_FIELDS = ("prompt", "response_a", "response_b")


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
