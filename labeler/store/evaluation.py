"""SQL for `labeler eval` and `labeler calibrate`: judged pairs with their human label, and their samples.

The human label of a pair is the majority of its gold labels (file labels and reviewers alike); a pair whose
human labels are split evenly has none and is left out.
"""

import duckdb

from labeler.store.rules import HUMAN
from schemas import EvalRow, Sample

ROW_COLUMNS = list(EvalRow.model_fields)
SAMPLE_COLUMNS = list(Sample.model_fields)
_SELECT = """
    SELECT p.pair_id, h.label AS human, j.label, j.confidence, j.p_a, j.votes_a, j.votes_b, j.abstained,
           j.order_consistent, j.label_ab, j.label_ba, j.mode, j.samples, p.source, p.category,
           CASE WHEN json_type(p.extra, '$.subcategory') = 'VARCHAR'
                THEN json_extract_string(p.extra, '$.subcategory') END AS subcategory,
           md5(p.prompt) AS prompt_hash, length(p.response_a) AS chars_a, length(p.response_b) AS chars_b, j.margin
"""


def staged_pair_ids(con: duckdb.DuckDBPyConnection, labelled_only: bool) -> list[str]:
    """Ids of the valid rows of the file staged last on this connection (see `pairs.resolve_staged`), in line
    order, each once. Call right after ingesting that file, before the connection is released."""
    labelled = "AND label IN ('A', 'B')" if labelled_only else ""
    rows = con.execute(
        f"SELECT pair_id FROM resolved WHERE conflict IS NULL AND nth = 1 {labelled} ORDER BY line"
    ).fetchall()
    return [r[0] for r in rows]


def rows_for_judge_key(con: duckdb.DuckDBPyConnection, judge_key: str, pair_ids: list[str]) -> list[EvalRow]:
    """One row per pair of `pair_ids` that has a human label and a judgment under `judge_key`, in `pair_ids` order."""
    rows = con.execute(
        f"""
        WITH human AS ({HUMAN}), wanted AS (SELECT unnest($ids) AS pair_id, generate_subscripts($ids, 1) AS k)
        {_SELECT}
        FROM wanted w JOIN judgments j ON j.pair_id = w.pair_id AND j.judge_key = $key
        JOIN pairs p ON p.pair_id = w.pair_id JOIN human h ON h.pair_id = w.pair_id
        WHERE h.label IN ('A', 'B')
        ORDER BY w.k
        """,
        {"ids": pair_ids, "key": judge_key},
    ).fetchall()
    return [EvalRow(**dict(zip(ROW_COLUMNS, row))) for row in rows]


def rows_for_calibration(con: duckdb.DuckDBPyConnection, judge_id: str, mode: str, samples: int) -> list[EvalRow]:
    """Every human-labelled pair's latest judgment by (judge_id, mode, samples), whatever its seed, in ingest order."""
    rows = con.execute(
        f"""
        WITH human AS ({HUMAN}),
        j AS (SELECT DISTINCT ON (pair_id) * FROM judgments WHERE judge_id = $judge AND mode = $mode
              AND samples = $k ORDER BY pair_id, created_at DESC)
        {_SELECT}
        FROM j JOIN pairs p USING (pair_id) JOIN human h USING (pair_id)
        WHERE h.label IN ('A', 'B')
        ORDER BY p.created_at, p.source_file, p.source_line
        """,
        {"judge": judge_id, "mode": mode, "k": samples},
    ).fetchall()
    return [EvalRow(**dict(zip(ROW_COLUMNS, row))) for row in rows]


def samples_for_pairs(con: duckdb.DuckDBPyConnection, judge_key: str, pair_ids: list[str]) -> list[Sample]:
    """Every stored sample of these pairs under `judge_key` (text left out), by pair, order, sample index."""
    cols = ", ".join("'' AS text" if c == "text" else c for c in SAMPLE_COLUMNS)
    rows = con.execute(
        f"SELECT {cols} FROM samples WHERE judge_key = $key AND pair_id IN (SELECT unnest($ids))"
        " ORDER BY pair_id, position, sample_idx",
        {"key": judge_key, "ids": pair_ids},
    ).fetchall()
    return [Sample(**dict(zip(SAMPLE_COLUMNS, row))) for row in rows]
