"""SQL for human review: the queue of pairs sent to Argilla (`review_items`) and the reviewers' answers.

Answers become rows of `gold_labels` (annotator = reviewer, origin = 'argilla:<dataset>', note = their
rationale), so they outrank model labels everywhere labels are resolved. A discarded record is marked in
`review_items`, never labelled.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import duckdb

from labeler.store.rules import LATEST, REVIEWED
from schemas import ReviewAnswer, ReviewQueue, ReviewRecord, RoutingCandidate

CANDIDATE_COLUMNS = list(RoutingCandidate.model_fields)
INGEST_ORDER = "p.created_at, p.source_file, p.source_line"


def origin(dataset: str) -> str:
    return f"argilla:{dataset}"


@dataclass
class AnswerCounts:
    records_seen: int = 0
    submitted: int = 0
    discarded: int = 0
    new_labels: int = 0
    changed_labels: int = 0
    withdrawn_labels: int = 0
    unknown_pairs: int = 0


@dataclass
class Agreement:
    """Pairs whose reviewers reached a majority, and how many of those the judge's label matched."""

    decided: int = 0
    agreed: int = 0
    audit_decided: int = 0
    audit_agreed: int = 0


def candidates(con: duckdb.DuckDBPyConnection, dataset: str) -> list[RoutingCandidate]:
    """Latest judgments of pairs that no person has labelled and that are not queued for `dataset` yet."""
    cols = ", ".join(f"l.{c}" for c in CANDIDATE_COLUMNS)
    rows = con.execute(
        f"""
        WITH latest AS ({LATEST})
        SELECT {cols} FROM latest l JOIN pairs p USING (pair_id)
        WHERE l.pair_id NOT IN ({REVIEWED})
          AND l.pair_id NOT IN (SELECT pair_id FROM review_items WHERE dataset = ?)
        ORDER BY {INGEST_ORDER}
        """,
        [dataset],
    ).fetchall()
    return [RoutingCandidate(**dict(zip(CANDIDATE_COLUMNS, row))) for row in rows]


def add_routes(con: duckdb.DuckDBPyConnection, dataset: str, routes: Sequence[tuple[RoutingCandidate, str]]) -> int:
    """Queue routed pairs with a snapshot of the judgment the reviewer will see; already queued ones stay."""
    before = _count(con, dataset)
    if routes:
        con.executemany(
            "INSERT OR IGNORE INTO review_items (dataset, pair_id, route_reason, judge_key, judge_id, judge_label,"
            " judge_confidence, routed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [[dataset, c.pair_id, reason, c.judge_key, c.judge_id, c.label, c.confidence, _now()]
             for c, reason in routes],
        )
    return _count(con, dataset) - before


def records_to_push(con: duckdb.DuckDBPyConnection, dataset: str, limit: int | None) -> list[ReviewRecord]:
    """Routed records not sent yet; a suspect human label (`labeler audit`) has no judgment: its rationale says
    what the audit's heads found."""
    fields = list(ReviewRecord.model_fields)
    rows = con.execute(
        f"""
        SELECT r.pair_id, p.prompt, p.response_a, p.response_b,
               CASE WHEN r.route_reason = 'suspect' THEN printf('Audit: heads trained without this pair prefer '
                    || 'response %s (reward difference %.3f, spread %.3f over the heads); the human label says %s.',
                    r.judge_label, -a.strength, a.spread, a.human) ELSE j.rationale END,
               r.judge_label, r.judge_confidence, r.judge_id, r.judge_key, r.route_reason,
               CASE WHEN r.route_reason = 'suspect' THEN CASE a.human WHEN 'A' THEN a.strength ELSE -a.strength END
                    ELSE j.margin END,
               CASE WHEN r.route_reason = 'suspect' THEN a.spread ELSE j.margin_sd END
        FROM review_items r JOIN pairs p USING (pair_id)
        LEFT JOIN judgments j ON j.pair_id = r.pair_id AND j.judge_key = r.judge_key
        LEFT JOIN audits a ON a.pair_id = r.pair_id
        WHERE r.dataset = ? AND r.pushed_at IS NULL AND (j.pair_id IS NOT NULL OR r.route_reason = 'suspect')
        ORDER BY r.routed_at, {INGEST_ORDER}
        LIMIT ?
        """,
        [dataset, limit if limit is not None else 2**62],
    ).fetchall()
    return [ReviewRecord(**dict(zip(fields, row))) for row in rows]


def mark_pushed(con: duckdb.DuckDBPyConnection, dataset: str, pair_ids: list[str]) -> None:
    con.execute(
        "UPDATE review_items SET pushed_at = ?, status = CASE WHEN status = 'routed' THEN 'pushed' ELSE status END"
        " WHERE dataset = ? AND list_contains(?, pair_id)",
        [_now(), dataset, pair_ids],
    )


def forget_pushes(con: duckdb.DuckDBPyConnection, dataset: str) -> int:
    """The dataset is gone from the server: unanswered items must be pushed again."""
    return con.execute(
        "UPDATE review_items SET pushed_at = NULL, status = 'routed' WHERE dataset = ? AND status = 'pushed'",
        [dataset],
    ).fetchone()[0]


def unpushed_count(con: duckdb.DuckDBPyConnection, dataset: str) -> int:
    return con.execute(
        "SELECT count(*) FROM review_items WHERE dataset = ? AND pushed_at IS NULL", [dataset]
    ).fetchone()[0]


def save_answers(con: duckdb.DuckDBPyConnection, dataset: str, answers: list[ReviewAnswer],
                 seen_pair_ids: list[str]) -> AnswerCounts:
    """Make the stored labels of `dataset` match the server for every record seen (call inside a transaction).

    A reviewer's later answer replaces their earlier one; a withdrawn or discarded answer removes their
    label. Records not seen (e.g. deleted on the server) keep what was pulled before.
    """
    src = origin(dataset)
    known = {row[0] for row in con.execute(
        "SELECT pair_id FROM pairs WHERE list_contains(?, pair_id)", [seen_pair_ids]).fetchall()}
    counts = AnswerCounts(records_seen=len(seen_pair_ids), unknown_pairs=len(set(seen_pair_ids) - known))
    answers = [a for a in answers if a.pair_id in known]
    seen = sorted(known)
    before = {(p, a): (label, note) for p, a, label, note in con.execute(
        "SELECT pair_id, annotator, label, note FROM gold_labels WHERE origin = ? AND list_contains(?, pair_id)",
        [src, seen]).fetchall()}
    after = {(a.pair_id, a.reviewer): a for a in answers if a.status == "submitted"}
    counts.submitted = len(after)
    counts.discarded = sum(a.status == "discarded" for a in answers)
    counts.new_labels = len(after.keys() - before.keys())
    counts.changed_labels = sum(before[k] != (a.label, a.note) for k, a in after.items() if k in before)
    withdrawn = before.keys() - after.keys()
    counts.withdrawn_labels = len(withdrawn)
    if withdrawn:
        con.executemany("DELETE FROM gold_labels WHERE pair_id = ? AND annotator = ? AND origin = ?",
                        [[p, a, src] for p, a in withdrawn])
    if after:
        con.executemany(
            "INSERT OR REPLACE INTO gold_labels (pair_id, label, annotator, origin, note, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [[a.pair_id, a.label, a.reviewer, src, a.note, a.answered_at] for a in after.values()],
        )
    discarded = sorted({a.pair_id for a in answers if a.status == "discarded"})
    con.execute(
        """
        UPDATE review_items SET pulled_at = $now, status = CASE
            WHEN pair_id IN (SELECT pair_id FROM gold_labels WHERE origin = $origin) THEN 'answered'
            WHEN list_contains($discarded, pair_id) THEN 'discarded'
            ELSE 'pushed' END
        WHERE dataset = $dataset AND list_contains($seen, pair_id)
        """,
        {"now": _now(), "origin": src, "discarded": discarded, "dataset": dataset, "seen": seen},
    )
    return counts


def agreement(con: duckdb.DuckDBPyConnection, dataset: str) -> Agreement:
    """Judge label (as shown to the reviewers) against the reviewers' majority; even splits are left out."""
    rows = con.execute(
        """
        WITH votes AS (SELECT pair_id, label, count(*) AS n FROM gold_labels WHERE origin = $origin GROUP BY ALL),
        top AS (SELECT pair_id, max(n) AS n FROM votes GROUP BY pair_id),
        majority AS (SELECT pair_id, any_value(label) AS label FROM votes JOIN top USING (pair_id, n)
                     GROUP BY pair_id HAVING count(*) = 1)
        SELECT r.route_reason = 'audit', count(*), count_if(r.judge_label = m.label)
        FROM review_items r JOIN majority m USING (pair_id) WHERE r.dataset = $dataset GROUP BY ALL
        """,
        {"origin": origin(dataset), "dataset": dataset},
    ).fetchall()
    result = Agreement()
    for is_audit, n, agreed in rows:
        result.decided += n
        result.agreed += agreed
        if is_audit:
            result.audit_decided, result.audit_agreed = n, agreed
    return result


def queue(con: duckdb.DuckDBPyConnection) -> ReviewQueue:
    routed, pushed, answered, discarded = con.execute(
        "SELECT count(*), count(pushed_at), coalesce(count_if(status = 'answered'), 0),"
        " coalesce(count_if(status = 'discarded'), 0) FROM review_items"  # count_if of no rows is NULL
    ).fetchone()
    return ReviewQueue(routed=routed, pushed=pushed, answered=answered, discarded=discarded)


def _count(con: duckdb.DuckDBPyConnection, dataset: str) -> int:
    return con.execute("SELECT count(*) FROM review_items WHERE dataset = ?", [dataset]).fetchone()[0]


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)
