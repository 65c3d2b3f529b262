"""SQL for reading the store back: status counts and export rows."""

import socket
from pathlib import Path

import duckdb
import psutil

from labeler.store.rules import HUMAN, LATEST, REVIEWED
from schemas import ExportRow, RunRecord



def state_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    rows = con.execute(
        f"""
        WITH latest AS ({LATEST}), human AS ({REVIEWED})
        SELECT CASE WHEN h.pair_id IS NOT NULL THEN 'human-labeled'
                    WHEN l.pair_id IS NULL THEN 'unlabeled'
                    WHEN l.label IS NULL THEN 'undecided (all samples abstained)'
                    ELSE 'model-labeled' END AS state, count(*)
        FROM pairs p LEFT JOIN latest l USING (pair_id) LEFT JOIN human h USING (pair_id)
        GROUP BY state ORDER BY state
        """
    ).fetchall()
    return dict(rows)


def label_balance(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    rows = con.execute(
        f"WITH latest AS ({LATEST}) SELECT coalesce(label, 'none'), count(*) FROM latest GROUP BY ALL ORDER BY 1"
    ).fetchall()
    return dict(rows)


def confidence_histogram(con: duckdb.DuckDBPyConnection, bins: int = 10) -> list[dict]:
    rows = con.execute(
        f"""
        WITH latest AS ({LATEST})
        SELECT least(floor(confidence * ?), ? - 1)::INTEGER AS bin, count(*) FROM latest GROUP BY bin ORDER BY bin
        """,
        [bins, bins],
    ).fetchall()
    found = dict(rows)
    return [{"low": i / bins, "high": (i + 1) / bins, "count": found.get(i, 0)} for i in range(bins)]


def scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    return con.execute(sql).fetchone()[0]


def recent_runs(con: duckdb.DuckDBPyConnection, limit: int = 10) -> list[RunRecord]:
    fields = list(RunRecord.model_fields)
    rows = con.execute(f"SELECT {', '.join(fields)} FROM runs ORDER BY started_at DESC LIMIT ?", [limit]).fetchall()
    return [RunRecord(**dict(zip(fields, row))) for row in rows]


def mark_stale_runs(con: duckdb.DuckDBPyConnection) -> int:
    """A run still 'running' whose process is gone was killed: mark it 'interrupted'."""
    running = con.execute("SELECT run_id, pid, host FROM runs WHERE status = 'running'").fetchall()
    dead = [run_id for run_id, pid, host in running if host != socket.gethostname() or not _alive(pid)]
    for run_id in dead:
        con.execute("UPDATE runs SET status = 'interrupted' WHERE run_id = ?", [run_id])
    return len(dead)


def _alive(pid: int | None) -> bool:
    return bool(pid) and psutil.pid_exists(pid)


def _export_query(min_confidence: float | None) -> str:
    conf = "" if min_confidence is None else f"AND (r.pair_id IS NOT NULL OR l.confidence >= {float(min_confidence)})"
    return f"""
        WITH latest AS ({LATEST}), human AS ({HUMAN}), reviewed AS ({REVIEWED})
        SELECT p.pair_id, p.prompt, p.response_a, p.response_b,
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
               l.judge_id, l.judge_key, l.mode, l.samples, l.seed, l.template_hash, l.created_at AS model_labeled_at,
               p.source
        FROM pairs p LEFT JOIN latest l USING (pair_id) LEFT JOIN human h USING (pair_id)
             LEFT JOIN reviewed r USING (pair_id)
        WHERE CASE WHEN r.pair_id IS NOT NULL THEN h.label ELSE l.label END IN ('A', 'B') {conf}
        ORDER BY p.created_at, p.source_file, p.source_line
    """


def export_rows(con: duckdb.DuckDBPyConnection, min_confidence: float | None) -> list[ExportRow]:
    fields = list(ExportRow.model_fields)
    rows = con.execute(_export_query(min_confidence)).fetchall()
    return [ExportRow(**dict(zip(fields, row))) for row in rows]


def copy_export(con: duckdb.DuckDBPyConnection, out: Path, fmt: str, dpo: bool, min_confidence: float | None) -> int:
    """Write the export with DuckDB's COPY (no Python loop over rows); returns the row count."""
    query = _export_query(min_confidence)
    if dpo:
        query = f"""
            SELECT prompt,
                   CASE WHEN label = 'A' THEN response_a ELSE response_b END AS chosen,
                   CASE WHEN label = 'A' THEN response_b ELSE response_a END AS rejected
            FROM ({query})
        """
    options = "FORMAT parquet" if fmt == "parquet" else "FORMAT json"
    con.execute(f"COPY ({query}) TO '{_sql_path(out)}' ({options})")
    return con.execute(f"SELECT count(*) FROM ({query})").fetchone()[0]


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
