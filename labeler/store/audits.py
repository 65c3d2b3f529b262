"""SQL for `labeler audit`: each human-labelled pair's cross-fitted strength, and the suspects sent to review."""

from datetime import datetime, timezone

import duckdb

from labeler.store.rules import HUMAN as _HUMAN_NOW  # the human majority label as it stands now
from schemas import AuditRow

COLUMNS = ("pair_id", "judge_id", "human", "strength", "spread", "p_human", "flagged", "audited_at")


def save(con: duckdb.DuckDBPyConnection, judge_id: str, rows: list[AuditRow]) -> None:
    """Replace the audit of these pairs (a pair keeps only its latest audit)."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    con.executemany(
        f"INSERT OR REPLACE INTO audits ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
        [[r.pair_id, judge_id, r.human, r.strength, r.spread, r.p_human, r.flagged, now] for r in rows])


def flagged(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """Pairs whose latest audit flagged their human label, while that label is still the one audited: the heads'
    calibrated probability of the human's choice."""
    return dict(con.execute(f"SELECT a.pair_id, a.p_human FROM audits a JOIN ({_HUMAN_NOW}) h USING (pair_id) "
                            "WHERE a.flagged AND h.label = a.human").fetchall())


def queue_suspects(con: duckdb.DuckDBPyConnection, dataset: str) -> int:
    """Queue the flagged pairs for a second look, with the heads' choice as the suggestion; returns how many new."""
    before = _count(con, dataset)
    con.execute(
        f"""
        INSERT OR IGNORE INTO review_items (dataset, pair_id, route_reason, judge_key, judge_id, judge_label,
                                            judge_confidence, routed_at)
        SELECT ?, a.pair_id, 'suspect', 'audit', a.judge_id, CASE a.human WHEN 'A' THEN 'B' ELSE 'A' END,
               1 - a.p_human, ?
        FROM audits a JOIN ({_HUMAN_NOW}) h USING (pair_id)
        WHERE a.flagged AND h.label = a.human
        ORDER BY a.p_human, a.pair_id
        """,
        [dataset, datetime.now(timezone.utc).replace(tzinfo=None)])
    return _count(con, dataset) - before


def _count(con: duckdb.DuckDBPyConnection, dataset: str) -> int:
    return con.execute("SELECT count(*) FROM review_items WHERE dataset = ?", [dataset]).fetchone()[0]

