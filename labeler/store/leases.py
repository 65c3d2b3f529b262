"""Which runs are alive, and the pairs they hold.

Leases: concurrent runs of one judge claim disjoint pairs, so N pending pairs cost ~N judge calls in all.

A run leases the pairs it is about to judge (a batch, or adaptive voting's next pairs in flight). A lease is free
again once the judgment is stored, once its run is no longer running (finished, interrupted, or killed: its process
is gone), or when it expires (`LABELER_LEASE_SECONDS`, default one hour; a backstop).
"""

import os
import socket
from datetime import datetime, timedelta, timezone

import duckdb
import psutil


def lease_seconds() -> float:
    return float(os.environ.get("LABELER_LEASE_SECONDS", "3600"))


def claim(con: duckdb.DuckDBPyConnection, judge_key: str, run_id: str, candidates: list[str],
          limit: int) -> tuple[list[str], int]:
    """Lease up to `limit` of `candidates` (in their order) that have no judgment under `judge_key` and no live
    lease of another run; drop this run's leases on pairs it has stored since (the others are still in flight).
    Returns (claimed ids, how many candidates were passed over: judged or held by another run)."""
    now = _now()
    _free_stale(con, now)
    con.execute("""
        DELETE FROM leases WHERE run_id = $run AND pair_id IN (SELECT pair_id FROM judgments WHERE judge_key = $key)
        """, {"run": run_id, "key": judge_key})
    taken = {row[0] for row in con.execute(
        """
        SELECT pair_id FROM judgments WHERE judge_key = $key AND pair_id IN (SELECT unnest($ids))
        UNION SELECT pair_id FROM leases WHERE judge_key = $key AND pair_id IN (SELECT unnest($ids))
        """, {"key": judge_key, "ids": candidates}).fetchall()}
    claimed, passed = [], 0
    for pair_id in candidates:
        if len(claimed) == limit:
            break
        if pair_id in taken:
            passed += 1
        else:
            claimed.append(pair_id)
    if claimed:
        expires = now + timedelta(seconds=lease_seconds())
        con.executemany("INSERT INTO leases VALUES (?, ?, ?, ?)", [[p, judge_key, run_id, expires] for p in claimed])
    return claimed, passed


def unfinished_run(con: duckdb.DuckDBPyConnection, judge_key: str, command: str) -> tuple[str, int, int] | None:
    """The latest run of `command` with this judge that stopped before its end (killed, interrupted, failed) and
    is not still running elsewhere: (run_id, pairs done, pairs it set out to judge)."""
    rows = con.execute(
        """
        SELECT run_id, n_done, n_target, status, pid, host FROM runs
        WHERE judge_key = $key AND command = $command AND status != 'finished'
          AND started_at > coalesce((SELECT max(started_at) FROM runs
                                     WHERE judge_key = $key AND command = $command AND status = 'finished'),
                                    '-infinity'::TIMESTAMP)
        ORDER BY started_at DESC LIMIT 20
        """, {"key": judge_key, "command": command}).fetchall()
    for run_id, done, target, status, pid, host in rows:
        if not _live(status, pid, host):
            return run_id, done, target
    return None


def release(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    con.execute("DELETE FROM leases WHERE run_id = ?", [run_id])


def _free_stale(con: duckdb.DuckDBPyConnection, now: datetime) -> None:
    holders = con.execute(
        "SELECT DISTINCT l.run_id, r.status, r.pid, r.host FROM leases l LEFT JOIN runs r USING (run_id)").fetchall()
    gone = [run_id for run_id, status, pid, host in holders if not _live(status, pid, host)]
    con.execute("DELETE FROM leases WHERE expires_at < ? OR run_id IN (SELECT unnest(?))", [now, gone])


def _live(status: str | None, pid: int | None, host: str | None) -> bool:
    """Running, and its process still exists (as `reports.mark_stale_runs` judges it when the store opens)."""
    return status == "running" and host == socket.gethostname() and bool(pid) and psutil.pid_exists(pid)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)
