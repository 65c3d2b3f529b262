"""SQL for judging: which pairs still need a label, and saving a batch of judgments atomically."""

import json
import os
import socket
from datetime import datetime, timezone

import duckdb

from labeler.store.rules import REVIEWED
from schemas import Judgment, Pair, Sample

JUDGMENT_COLUMNS = list(Judgment.model_fields)
SAMPLE_COLUMNS = list(Sample.model_fields)


def pending_pairs(con: duckdb.DuckDBPyConnection, judge_key: str, limit: int | None, skip_human: bool,
                  pair_ids: list[str] | None = None) -> list[Pair]:
    """Pairs (of `pair_ids`, when given) without a judgment under `judge_key`, in ingest order."""
    human = f"AND pair_id NOT IN ({REVIEWED})" if skip_human else ""
    only = "AND pair_id IN (SELECT unnest($ids))" if pair_ids is not None else ""
    params = {"key": judge_key, "limit": limit if limit is not None else 2**62}
    rows = con.execute(
        f"""
        SELECT pair_id, prompt, response_a, response_b, source, category, prompt_messages FROM pairs
        WHERE pair_id NOT IN (SELECT pair_id FROM judgments WHERE judge_key = $key) {human} {only}
        ORDER BY created_at, source_file, source_line
        LIMIT $limit
        """,
        params | ({"ids": pair_ids} if pair_ids is not None else {}),
    ).fetchall()
    return [Pair(**dict(zip(Pair.model_fields, row))) for row in rows]


def save_judgments(con: duckdb.DuckDBPyConnection, judgments: list[Judgment], samples: list[Sample]) -> None:
    """Insert one batch in bulk (one Arrow table per table, one INSERT each: row-by-row inserts held the write
    lock for seconds per thousand rows); the caller wraps it in a transaction so a kill loses at most this batch."""
    _insert(con, "samples", SAMPLE_COLUMNS, samples)
    _insert(con, "judgments", JUDGMENT_COLUMNS, judgments)


def _insert(con: duckdb.DuckDBPyConnection, table: str, columns: list[str], rows: list) -> None:
    if not rows:
        return
    import pyarrow as pa

    batch = pa.table({c: [getattr(r, c) for r in rows] for c in columns})
    view = f"_batch_{table}"
    con.register(view, batch)
    try:
        names = ", ".join(columns)
        con.execute(f"INSERT OR REPLACE INTO {table} ({names}) SELECT {names} FROM {view}")
    finally:
        con.unregister(view)


def start_run(con: duckdb.DuckDBPyConnection, run_id: str, command: str, judge_key: str | None,
              judge_id: str | None, mode: str | None, samples: int | None, params: dict, n_target: int) -> None:
    con.execute(
        "INSERT INTO runs (run_id, command, judge_key, judge_id, mode, samples, params, started_at, status, n_target,"
        " pid, host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)",
        [run_id, command, judge_key, judge_id, mode, samples, json.dumps(params), _now(), n_target, os.getpid(),
         socket.gethostname()],
    )


def advance_run(con: duckdb.DuckDBPyConnection, run_id: str, n: int) -> None:
    con.execute("UPDATE runs SET n_done = n_done + ? WHERE run_id = ?", [n, run_id])


def finish_run(con: duckdb.DuckDBPyConnection, run_id: str, status: str) -> None:
    con.execute("UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?", [status, _now(), run_id])


def samples_for(con: duckdb.DuckDBPyConnection, pair_id: str, judge_key: str) -> list[Sample]:
    rows = con.execute(
        f"SELECT {', '.join(SAMPLE_COLUMNS)} FROM samples WHERE pair_id = ? AND judge_key = ? "
        "ORDER BY position, sample_idx",
        [pair_id, judge_key],
    ).fetchall()
    return [Sample(**dict(zip(SAMPLE_COLUMNS, row))) for row in rows]


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)
