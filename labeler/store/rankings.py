"""SQL for N responses per prompt (`labeler rank`): groups, the pairs of a group that were compared (ordinary pairs,
judged and stored as any pair), and the responses' scores per judge."""

import json

import duckdb

from labeler.store.rules import HUMAN
from schemas.rankings import Group, Response, ResponseScore

SCORE_COLUMNS = list(ResponseScore.model_fields)


def save_groups(con: duckdb.DuckDBPyConnection, file_label: str, found: list[tuple[int, Group]]) -> int:
    """Store the groups of one input (a group already stored is kept as it is). Returns the number of new groups."""
    import pyarrow as pa

    new = 0
    if found:
        before = con.execute("SELECT count(*) FROM rank_groups").fetchall()[0][0]
        rows = [{"group_id": g.group_id, "prompt": g.prompt,
                 "prompt_messages": json.dumps([m.model_dump() for m in g.prompt_messages]) if g.prompt_messages else None,
                 "n": len(g.responses), "given_id": g.given_id, "source": g.source, "category": g.category,
                 "source_line": line} for line, g in found]
        con.register("labeler_groups", pa.Table.from_pylist(rows))
        con.execute("INSERT OR IGNORE INTO rank_groups (group_id, prompt, prompt_messages, n, given_id, source, "
                    "category, source_file, source_line) SELECT group_id, prompt, prompt_messages, n, given_id, "
                    "source, category, $file, source_line FROM labeler_groups", {"file": file_label})
        con.unregister("labeler_groups")
        responses = [{"group_id": g.group_id, "idx": i, "response": r.text, "rating": r.rating, "model": r.model}
                     for _, g in found for i, r in enumerate(g.responses)]
        con.register("labeler_responses", pa.Table.from_pylist(responses))
        con.execute("INSERT OR IGNORE INTO rank_responses SELECT group_id, idx, response, rating, model "
                    "FROM labeler_responses")
        con.unregister("labeler_responses")
        new = con.execute("SELECT count(*) FROM rank_groups").fetchall()[0][0] - before
    return new


def link_staged_pairs(con: duckdb.DuckDBPyConnection) -> None:
    """Link the gold pairs ingest made of the groups just stored (staged rows with a `group_id`) to their group."""
    con.execute(
        """
        INSERT OR IGNORE INTO rank_pairs
        SELECT json_extract_string(extra, '$.group_id'), json_extract(extra, '$.group_a')::INTEGER,
               json_extract(extra, '$.group_b')::INTEGER, pair_id
        FROM resolved WHERE conflict IS NULL AND nth = 1 AND json_extract_string(extra, '$.group_id') IS NOT NULL
        """
    )


def link_pairs(con: duckdb.DuckDBPyConnection, links: list[tuple[str, int, int, str]]) -> None:
    """(group, idx of response A, idx of response B, pair id): stored pairs that compare two of a group's responses."""
    if links:
        con.executemany("INSERT OR IGNORE INTO rank_pairs VALUES (?, ?, ?, ?)", [list(x) for x in links])


def pairs_by_id(con: duckdb.DuckDBPyConnection, pair_ids: list[str]) -> list[tuple]:
    """(pair_id, prompt, prompt_messages, response_a, response_b, source, category, source_line) in ingest order."""
    return con.execute(
        "SELECT pair_id, prompt, prompt_messages, response_a, response_b, source, category, source_line FROM pairs "
        "WHERE pair_id IN (SELECT unnest(?)) ORDER BY created_at, source_file, source_line", [pair_ids]).fetchall()


def groups(con: duckdb.DuckDBPyConnection, group_ids: list[str] | None = None) -> list[Group]:
    """The groups (of `group_ids`, when given) in ingest order, with their responses in input order."""
    only = "WHERE g.group_id IN (SELECT unnest($ids))" if group_ids is not None else ""
    rows = con.execute(
        f"""
        SELECT g.group_id, g.prompt, g.prompt_messages, g.given_id, g.source, g.category,
               list(struct_pack(text := r.response, rating := r.rating, model := r.model) ORDER BY r.idx)
        FROM rank_groups g JOIN rank_responses r USING (group_id) {only}
        GROUP BY ALL ORDER BY min(g.created_at), min(g.source_file), min(g.source_line)
        """,
        {"ids": group_ids} if group_ids is not None else {},
    ).fetchall()
    return [Group(group_id=gid, prompt=prompt, prompt_messages=messages, given_id=given, source=source,
                  category=category, responses=[Response(**r) for r in responses])
            for gid, prompt, messages, given, source, category, responses in rows]


def unranked(con: duckdb.DuckDBPyConnection, judge_key: str, limit: int | None) -> list[str]:
    """Ids of the groups without scores from this judge, in ingest order."""
    rows = con.execute(
        """
        SELECT group_id FROM rank_groups
        WHERE group_id NOT IN (SELECT group_id FROM rank_scores WHERE judge_key = $key)
        ORDER BY created_at, source_file, source_line LIMIT $limit
        """,
        {"key": judge_key, "limit": limit if limit is not None else 2**62},
    ).fetchall()
    return [r[0] for r in rows]


def group_pairs(con: duckdb.DuckDBPyConnection, group_ids: list[str]) -> dict[str, dict[tuple[int, int], str]]:
    """group id -> {(idx of response A, idx of response B): pair id}."""
    out: dict[str, dict[tuple[int, int], str]] = {g: {} for g in group_ids}
    for gid, a, b, pid in con.execute("SELECT group_id, idx_a, idx_b, pair_id FROM rank_pairs "
                                      "WHERE group_id IN (SELECT unnest(?))", [group_ids]).fetchall():
        out[gid][(a, b)] = pid
    return out


def add_pairs(con: duckdb.DuckDBPyConnection, wanted: list[tuple[str, int, int]]) -> None:
    """Store (group, i, j) as ordinary pairs (response i as A), with the group's file and line, and link them; a pair
    whose content is already stored is linked as it is. Call inside a transaction."""
    import pyarrow as pa

    if not wanted:
        return
    con.register("labeler_wanted", pa.table({"group_id": [w[0] for w in wanted], "idx_a": [w[1] for w in wanted],
                                             "idx_b": [w[2] for w in wanted]}))
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE labeler_new_pairs AS
        SELECT w.group_id, w.idx_a, w.idx_b, g.prompt, g.prompt_messages, a.response AS response_a,
               b.response AS response_b, g.source, g.category, g.source_file, g.source_line,
               sha256(json_array(g.prompt, a.response, b.response)::VARCHAR) AS content_hash
        FROM labeler_wanted w JOIN rank_groups g USING (group_id)
             JOIN rank_responses a ON a.group_id = w.group_id AND a.idx = w.idx_a
             JOIN rank_responses b ON b.group_id = w.group_id AND b.idx = w.idx_b
        """
    )
    con.unregister("labeler_wanted")
    con.execute(
        """
        INSERT OR IGNORE INTO pairs (pair_id, prompt, response_a, response_b, content_hash, source, category, extra,
                                     source_file, source_line, prompt_messages)
        SELECT left(content_hash, 16), prompt, response_a, response_b, content_hash, source, category,
               json_object('group_id', group_id, 'group_a', idx_a, 'group_b', idx_b), source_file, source_line,
               prompt_messages
        FROM labeler_new_pairs
        """
    )
    con.execute("INSERT OR IGNORE INTO rank_pairs SELECT group_id, idx_a, idx_b, left(content_hash, 16) "
                "FROM labeler_new_pairs")


def outcomes(con: duckdb.DuckDBPyConnection, judge_key: str, pair_ids: list[str]) -> dict[str, tuple]:
    """pair id -> (votes_a, votes_b, p_a) of this judge's judgment, for the judged ones."""
    rows = con.execute("SELECT pair_id, votes_a, votes_b, p_a FROM judgments WHERE judge_key = ? "
                       "AND pair_id IN (SELECT unnest(?))", [judge_key, pair_ids]).fetchall()
    return {pid: (a, b, p) for pid, a, b, p in rows}


def save_scores(con: duckdb.DuckDBPyConnection, found: list[ResponseScore]) -> None:
    """One bulk insert (the caller wraps it in a transaction with the run's progress)."""
    import pyarrow as pa

    if not found:
        return
    con.register("labeler_scores", pa.table({c: [getattr(s, c) for s in found] for c in SCORE_COLUMNS}))
    names = ", ".join(SCORE_COLUMNS)
    con.execute(f"INSERT OR REPLACE INTO rank_scores ({names}) SELECT {names} FROM labeler_scores")
    con.unregister("labeler_scores")


def scores(con: duckdb.DuckDBPyConnection, judge_key: str | None = None) -> dict[str, list[ResponseScore]]:
    """group id -> the scores of its latest ranking (of `judge_key`, when given), by response index."""
    rows = con.execute(
        f"""
        WITH latest AS (SELECT DISTINCT ON (group_id) group_id, judge_key FROM rank_scores
                        WHERE $key IS NULL OR judge_key = $key ORDER BY group_id, created_at DESC)
        SELECT {', '.join('s.' + c for c in SCORE_COLUMNS)} FROM rank_scores s JOIN latest USING (group_id, judge_key)
        ORDER BY s.group_id, s.idx
        """,
        {"key": judge_key},
    ).fetchall()
    out: dict[str, list[ResponseScore]] = {}
    for row in rows:
        score = ResponseScore(**dict(zip(SCORE_COLUMNS, row)))
        out.setdefault(score.group_id, []).append(score)
    return out


def human_pairs(con: duckdb.DuckDBPyConnection, group_ids: list[str],
                ties: bool = False) -> list[tuple[str, int, int, str]]:
    """(group, idx_a, idx_b, human verdict A or B, or tie with `ties`) of the groups' linked pairs with one."""
    return con.execute(
        f"""
        SELECT r.group_id, r.idx_a, r.idx_b, h.label FROM rank_pairs r JOIN ({HUMAN}) h USING (pair_id)
        WHERE (h.label IN ('A', 'B') OR (? AND h.label = 'tie')) AND r.group_id IN (SELECT unnest(?))
        ORDER BY r.group_id, r.idx_a, r.idx_b
        """,
        [ties, group_ids],
    ).fetchall()
