"""SQL for reviewing rankings in Argilla (`labeler review push/pull --rankings`): the queue of groups
(`rank_review_items`) and the reviewers' orders, stored as human labels on the group's pairs.

A reviewer's order implies a verdict on every pair of the group's responses: i ranked above j means i is better,
equal ranks a tie. Each verdict becomes a `gold_labels` row (annotator = reviewer, origin =
'argilla:<dataset>-rankings-<n>') on the stored pair comparing i and j, made (and linked to the group) first where
the sparse design never compared them. So the human labels outrank model labels, and retrain, eval and export read
them as they read any reviewed pair.
"""

from dataclasses import dataclass
from datetime import datetime, timezone

import duckdb

from labeler.store import rankings, review
from labeler.store.review import AnswerCounts
from labeler.store.rules import HUMAN
from schemas import ReviewAnswer
from schemas.rankings import RankAnswer, RankReviewRecord, RankRoute, ResponseScore

ROUTE_COLUMNS = list(RankRoute.model_fields)


@dataclass
class RankAnswerCounts(AnswerCounts):
    """AnswerCounts of ranking records (the label counts are of pairs), and how often the judge's best response was
    among the reviewer's best (`top_agreed` of `top_decided` submitted orders)."""

    top_decided: int = 0
    top_agreed: int = 0


def dataset_name(dataset: str, n: int) -> str:
    """The Argilla dataset of the rankings of `n` responses (a dataset's fields and ranking values are fixed)."""
    return f"{dataset}-rankings-{n}"


def candidates(con: duckdb.DuckDBPyConnection, dataset: str) -> dict[str, list[ResponseScore]]:
    """group id -> its latest judge scores, for the groups not queued for `dataset` yet whose order no person gave:
    neither ratings on every response (gold at ingest) nor a human verdict on every pair."""
    scores = rankings.scores(con)
    skip = {row[0] for row in con.execute(
        f"""
        SELECT group_id FROM rank_review_items WHERE dataset = $dataset
        UNION SELECT group_id FROM rank_responses GROUP BY group_id HAVING count(rating) = count(*)
        UNION SELECT r.group_id FROM rank_pairs r JOIN ({HUMAN}) h USING (pair_id) JOIN rank_groups g USING (group_id)
              WHERE h.label IS NOT NULL GROUP BY r.group_id, g.n
              HAVING count(DISTINCT least(r.idx_a, r.idx_b) || '-' || greatest(r.idx_a, r.idx_b)) = g.n * (g.n - 1) / 2
        """,
        {"dataset": dataset},
    ).fetchall()}
    return {g: s for g, s in scores.items() if g not in skip}


def add_routes(con: duckdb.DuckDBPyConnection, dataset: str, routes: list[RankRoute]) -> int:
    """Queue routed groups with the judge's order as the reviewer will see it; already queued ones stay."""
    before = _count(con, dataset)
    if routes:
        con.executemany(
            f"INSERT OR IGNORE INTO rank_review_items (dataset, {', '.join(ROUTE_COLUMNS)}, routed_at) "
            f"VALUES (?, {', '.join('?' for _ in ROUTE_COLUMNS)}, ?)",
            [[dataset, *(getattr(r, c) for c in ROUTE_COLUMNS), _now()] for r in routes],
        )
    return _count(con, dataset) - before


def records_to_push(con: duckdb.DuckDBPyConnection, dataset: str, limit: int | None) -> list[RankReviewRecord]:
    """Routed groups not sent yet, by number of responses (one Argilla dataset each), then in routing order."""
    cols = ", ".join(f"i.{c}" for c in ROUTE_COLUMNS)
    rows = con.execute(
        f"""
        SELECT {cols}, g.prompt, (SELECT list(r.response ORDER BY r.idx) FROM rank_responses r
                                  WHERE r.group_id = i.group_id)
        FROM rank_review_items i JOIN rank_groups g USING (group_id)
        WHERE i.dataset = ? AND i.pushed_at IS NULL
        ORDER BY i.n, i.routed_at, g.created_at, g.source_file, g.source_line
        LIMIT ?
        """,
        [dataset, limit if limit is not None else 2**62],
    ).fetchall()
    fields = [*ROUTE_COLUMNS, "prompt", "responses"]
    return [RankReviewRecord(**dict(zip(fields, row))) for row in rows]


def mark_pushed(con: duckdb.DuckDBPyConnection, dataset: str, group_ids: list[str]) -> None:
    con.execute(
        "UPDATE rank_review_items SET pushed_at = ?, status = CASE WHEN status = 'routed' THEN 'pushed' ELSE status "
        "END WHERE dataset = ? AND list_contains(?, group_id)",
        [_now(), dataset, group_ids],
    )


def forget_pushes(con: duckdb.DuckDBPyConnection, dataset: str, n: int) -> int:
    """The dataset of `n` responses is gone from the server: its unanswered groups must be pushed again."""
    return con.execute(
        "UPDATE rank_review_items SET pushed_at = NULL, status = 'routed' WHERE dataset = ? AND n = ? "
        "AND status = 'pushed'", [dataset, n],
    ).fetchone()[0]


def unpushed_count(con: duckdb.DuckDBPyConnection, dataset: str) -> int:
    return _count(con, dataset, "AND pushed_at IS NULL")


def pushed_sizes(con: duckdb.DuckDBPyConnection, dataset: str) -> list[int]:
    """The numbers of responses of the groups sent to review under `dataset` (one Argilla dataset each)."""
    return [r[0] for r in con.execute("SELECT DISTINCT n FROM rank_review_items WHERE dataset = ? AND pushed_at IS "
                                      "NOT NULL ORDER BY n", [dataset]).fetchall()]


def save_answers(con: duckdb.DuckDBPyConnection, dataset: str, n: int, answers: list[RankAnswer],
                 seen_group_ids: list[str]) -> RankAnswerCounts:
    """Make the human labels implied by the rankings of `dataset`'s `n`-response records match the server, for every
    record seen (call inside a transaction). Counts are of records and answers; the label counts are of pairs."""
    known = {row[0] for row in con.execute(
        "SELECT group_id FROM rank_groups WHERE n = ? AND list_contains(?, group_id)", [n, seen_group_ids]).fetchall()}
    answers = [a for a in answers if a.group_id in known]
    submitted = [a for a in answers if a.status == "submitted"]
    every_pair = [(i, j) for i in range(n) for j in range(i + 1, n)]
    links = rankings.group_pairs(con, sorted({a.group_id for a in submitted}))
    rankings.add_pairs(con, [(g, i, j) for g, by_pair in links.items() for i, j in every_pair
                             if (i, j) not in by_pair and (j, i) not in by_pair])
    links = rankings.group_pairs(con, sorted(known))
    implied = [ReviewAnswer(pair_id=pair_id, reviewer=a.reviewer, status="submitted", label=label,
                            answered_at=a.answered_at)
               for a in submitted for pair_id, label in _verdicts(a.ranks, links[a.group_id], every_pair)]
    pairs = review.save_answers(con, dataset_name(dataset, n), implied,
                                sorted({p for by_pair in links.values() for p in by_pair.values()}))
    answered = sorted({a.group_id for a in submitted})
    discarded = sorted({a.group_id for a in answers if a.status == "discarded"} - set(answered))
    con.execute(
        """
        UPDATE rank_review_items SET pulled_at = $now, status = CASE WHEN list_contains($answered, group_id)
            THEN 'answered' WHEN list_contains($discarded, group_id) THEN 'discarded' ELSE 'pushed' END
        WHERE dataset = $dataset AND list_contains($seen, group_id)
        """,
        {"now": _now(), "answered": answered, "discarded": discarded, "dataset": dataset, "seen": sorted(known)},
    )
    best = dict(con.execute("SELECT group_id, judge_order[1] FROM rank_review_items WHERE dataset = ? "
                            "AND list_contains(?, group_id)", [dataset, answered]).fetchall())
    return RankAnswerCounts(records_seen=len(seen_group_ids), submitted=len(submitted),
                            discarded=sum(a.status == "discarded" for a in answers), new_labels=pairs.new_labels,
                            changed_labels=pairs.changed_labels, withdrawn_labels=pairs.withdrawn_labels,
                            unknown_pairs=len(set(seen_group_ids) - known),
                            top_decided=sum(a.group_id in best for a in submitted),
                            top_agreed=sum(a.group_id in best and a.ranks[best[a.group_id]] == min(a.ranks.values())
                                           for a in submitted))


def _verdicts(ranks: dict[int, int], by_pair: dict[tuple[int, int], str],
              every_pair: list[tuple[int, int]]) -> list[tuple[str, str]]:
    """(pair id, label) for every pair of responses: A/B as the stored pair shows them, tie for equal ranks."""
    out = []
    for i, j in every_pair:
        pair_id, swapped = (by_pair[(i, j)], False) if (i, j) in by_pair else (by_pair[(j, i)], True)
        if ranks[i] == ranks[j]:
            label = "tie"
        else:
            label = "A" if (ranks[i] < ranks[j]) != swapped else "B"
        out.append((pair_id, label))
    return out


def _count(con: duckdb.DuckDBPyConnection, dataset: str, where: str = "") -> int:
    return con.execute(f"SELECT count(*) FROM rank_review_items WHERE dataset = ? {where}", [dataset]).fetchone()[0]


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)
