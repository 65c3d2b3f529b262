"""SQL for `labeler retrain` and `labeler judges`: gold pairs, the stored held-out split, judge versions.

Gold label of a pair = the majority of its human A/B labels (`rules.HUMAN`); ties and even splits have none.
`gold_split` assigns every gold pair once to 'train' or 'heldout' and never changes it. `judges` registers
every trained judge; at most one row is active, and switching it is one transaction.
"""

import json
from datetime import datetime, timezone

import duckdb

from labeler.store.rules import HUMAN
from schemas import GoldPair, JudgeVersion, Pair

VERSION_COLUMNS = [c for c in JudgeVersion.model_fields if c != "metrics"]


def gold_pairs(con: duckdb.DuckDBPyConnection) -> list[GoldPair]:
    """Pairs with a human majority label, with their split (None if not assigned yet), in ingest order."""
    rows = con.execute(
        f"""
        WITH human AS ({HUMAN})
        SELECT p.pair_id, p.prompt, p.response_a, p.response_b, p.source, p.category, h.label,
               left(sha256(p.prompt), 16) AS prompt_hash, s.split,
               (SELECT list(g.note ORDER BY g.created_at) FROM gold_labels g
                WHERE g.pair_id = p.pair_id AND g.label = h.label AND nullif(trim(g.note), '') IS NOT NULL) AS notes
        FROM pairs p JOIN human h USING (pair_id) LEFT JOIN gold_split s USING (pair_id)
        WHERE h.label IN ('A', 'B')
        ORDER BY p.created_at, p.source_file, p.source_line
        """
    ).fetchall()
    out = []
    for pid, prompt, a, b, source, category, label, prompt_hash, split, notes in rows:
        pair = Pair(pair_id=pid, prompt=prompt, response_a=a, response_b=b, source=source, category=category)
        out.append(GoldPair(pair=pair, label=label, prompt_hash=prompt_hash, split=split, notes=notes or []))
    return out


def save_split(con: duckdb.DuckDBPyConnection, assignments: list[tuple[str, str, str]], seed: int) -> int:
    """Insert (pair_id, split, prompt_hash) rows; an already assigned pair keeps its split."""
    if not assignments:
        return 0
    before = con.execute("SELECT count(*) FROM gold_split").fetchone()[0]
    con.executemany(
        "INSERT OR IGNORE INTO gold_split (pair_id, split, prompt_hash, seed, assigned_at) VALUES (?, ?, ?, ?, ?)",
        [[pid, split, ph, seed, _now()] for pid, split, ph in assignments],
    )
    return con.execute("SELECT count(*) FROM gold_split").fetchone()[0] - before


def judged_labels(con: duckdb.DuckDBPyConnection, judge_key: str, pair_ids: list[str]) -> dict[str, str | None]:
    """pair_id -> label of this judge key's judgment (None = undecided), for the pairs it has judged."""
    rows = con.execute(
        "SELECT pair_id, label FROM judgments WHERE judge_key = ? AND list_contains(?, pair_id)",
        [judge_key, pair_ids],
    ).fetchall()
    return dict(rows)


def label_changes(con: duckdb.DuckDBPyConnection, judge_key: str, pair_ids: list[str]) -> tuple[int, int]:
    """(compared, changed): this judge's labels against the latest label of any other judge, for `pair_ids`."""
    return con.execute(
        """
        WITH prev AS (SELECT DISTINCT ON (pair_id) pair_id, label FROM judgments
                      WHERE judge_key <> $key AND list_contains($ids, pair_id) ORDER BY pair_id, created_at DESC)
        SELECT count(*), count_if(j.label IS DISTINCT FROM prev.label)
        FROM judgments j JOIN prev USING (pair_id) WHERE j.judge_key = $key AND list_contains($ids, j.pair_id)
        """,
        {"key": judge_key, "ids": pair_ids},
    ).fetchone()


def versions(con: duckdb.DuckDBPyConnection) -> list[JudgeVersion]:
    rows = con.execute(
        f"SELECT {', '.join(VERSION_COLUMNS)}, metrics FROM judges ORDER BY created_at, version"
    ).fetchall()
    return [_version(row) for row in rows]


def paths(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Where every registered version lives (read as stored, whatever else the row holds)."""
    return [row[0] for row in con.execute("SELECT DISTINCT path FROM judges").fetchall()]


def version(con: duckdb.DuckDBPyConnection, name: str) -> JudgeVersion | None:
    row = con.execute(
        f"SELECT {', '.join(VERSION_COLUMNS)}, metrics FROM judges WHERE version = ?", [name]
    ).fetchone()
    return _version(row) if row else None


def active(con: duckdb.DuckDBPyConnection) -> JudgeVersion | None:
    row = con.execute(
        f"SELECT {', '.join(VERSION_COLUMNS)}, metrics FROM judges WHERE active ORDER BY created_at DESC LIMIT 1"
    ).fetchone()
    return _version(row) if row else None


def register(con: duckdb.DuckDBPyConnection, record: JudgeVersion) -> None:
    """Insert a version; if `record.active`, it becomes the only active one (call inside a transaction)."""
    if record.active:
        con.execute("UPDATE judges SET active = false WHERE active")
    con.execute(
        f"INSERT INTO judges ({', '.join(VERSION_COLUMNS)}, metrics) VALUES ({', '.join('?' * (len(VERSION_COLUMNS) + 1))})",
        [getattr(record, c) for c in VERSION_COLUMNS] + [json.dumps(record.metrics)],
    )


def activate(con: duckdb.DuckDBPyConnection, name: str | None) -> None:
    """Make `name` the only active version; None deactivates all (the default model judges again)."""
    con.execute("UPDATE judges SET active = false WHERE active")
    if name is not None:
        con.execute("UPDATE judges SET active = true WHERE version = ?", [name])


def _version(row) -> JudgeVersion:
    values = dict(zip(VERSION_COLUMNS, row[:-1]))
    metrics = row[-1]
    values["metrics"] = json.loads(metrics) if isinstance(metrics, str) else (metrics or {})
    return JudgeVersion(**values)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)
