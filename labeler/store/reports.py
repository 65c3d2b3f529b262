"""SQL for reading the store back: status counts (export rows: `exports.py`)."""

import socket
import duckdb
import psutil

from labeler.store.rules import HUMAN, LATEST, REVIEWED
from schemas import RunRecord



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


def human_balance(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Human verdicts: A, B, tie, and `split` (an even A/B split of several people: no verdict)."""
    rows = con.execute(
        f"WITH human AS ({HUMAN}) SELECT coalesce(label, 'split'), count(*) FROM human GROUP BY ALL ORDER BY 1"
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
    rows = con.execute(f"SELECT {', '.join(fields)}, pid, host FROM runs ORDER BY started_at DESC LIMIT ?",
                       [limit]).fetchall()
    records = [RunRecord(**dict(zip(fields, row))) for row in rows]
    # a store opened read-only was not marked by `mark_stale_runs`: show a killed run as it would be marked
    return [r.model_copy(update={"status": "interrupted"}) if r.status == "running" and _dead(*row[-2:]) else r
            for r, row in zip(records, rows)]


def mark_stale_runs(con: duckdb.DuckDBPyConnection) -> int:
    """A run still 'running' whose process is gone was killed: mark it 'interrupted'."""
    running = con.execute("SELECT run_id, pid, host FROM runs WHERE status = 'running'").fetchall()
    dead = [run_id for run_id, pid, host in running if _dead(pid, host)]
    for run_id in dead:
        con.execute("UPDATE runs SET status = 'interrupted' WHERE run_id = ?", [run_id])
    return len(dead)


def _dead(pid: int | None, host: str | None) -> bool:
    return host != socket.gethostname() or not _alive(pid)


def _alive(pid: int | None) -> bool:
    return bool(pid) and psutil.pid_exists(pid)
