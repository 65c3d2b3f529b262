"""`labeler export --rankings` (one row per prompt: its responses with score, rank and uncertainty) and
`labeler export --dpo --pairs MODE` (DPO pairs taken from each prompt's ranking). A group whose responses all carry
a human rating is ranked by the ratings (gold); else a group with a human verdict on every pair of its responses (a
reviewer's order, `labeler review pull --rankings`) by those verdicts, each response scored by the responses it beats
(a tie counts half); else by its latest ranking from a judge."""

import math
from pathlib import Path

from labeler.judge.bradley_terry import Z95
from labeler.exporting import write_rows
from labeler.store import Store
from schemas.rankings import Group, RankedResponse, RankingRow, ResponseScore

PAIRS = ("best-worst", "best-rest", "all", "adjacent")


def ranking_rows(store: Store) -> list[RankingRow]:
    """Every group with a ranking, in ingest order."""
    scores = store.rank_scores()
    groups = store.groups()
    verdicts: dict[str, list[tuple[int, int, str]]] = {}
    for gid, a, b, label in store.human_group_pairs([g.group_id for g in groups], ties=True):
        verdicts.setdefault(gid, []).append((a, b, label))
    rows = []
    for group in groups:
        row = _row(group, scores.get(group.group_id), _human_wins(len(group.responses), verdicts.get(group.group_id)))
        if row is not None:
            rows.append(row)
    return rows


def _human_wins(n: int, verdicts: list[tuple[int, int, str]] | None) -> list[float] | None:
    """Per response, the responses people preferred it to (a tie counts half), when every pair has a verdict."""
    if not verdicts or len({(min(a, b), max(a, b)) for a, b, _ in verdicts}) < n * (n - 1) // 2:
        return None
    wins, seen = [0.0] * n, set()
    for a, b, label in verdicts:
        if (min(a, b), max(a, b)) in seen:  # a pair linked in both orders: count it once
            continue
        seen.add((min(a, b), max(a, b)))
        if label == "tie":
            wins[a] += 0.5
            wins[b] += 0.5
        else:
            wins[a if label == "A" else b] += 1.0
    return wins


def _row(group: Group, scores: list[ResponseScore] | None, human_wins: list[float] | None = None) -> RankingRow | None:
    rated = all(r.rating is not None for r in group.responses)
    human = rated or human_wins is not None
    if not human and not scores:
        return None
    if rated:
        values = [(r.rating, None) for r in group.responses]
    elif human_wins is not None:
        values = [(w, None) for w in human_wins]
    else:
        values = [(s.score, s.uncertainty) for s in sorted(scores, key=lambda s: s.idx)]
    order = sorted(range(len(values)), key=lambda i: (-values[i][0], i))
    ranked = [RankedResponse(idx=i, text=group.responses[i].text, rank=k + 1, score=values[i][0],
                             uncertainty=values[i][1], rating=group.responses[i].rating, model=group.responses[i].model)
              for k, i in enumerate(order)]
    best, worst = ranked[0], ranked[-1]
    near_tie = (best.uncertainty is not None and worst.uncertainty is not None
                and best.score - worst.score < Z95 * math.hypot(best.uncertainty, worst.uncertainty))
    first = scores[0] if scores and not human else None
    return RankingRow(group_id=group.group_id, prompt=group.prompt, prompt_messages=group.prompt_messages,
                      responses=ranked, ranked_by="human" if human else "model", margin=best.score - worst.score,
                      near_tie=near_tie, judge_id=first.judge_id if first else None,
                      judge_key=first.judge_key if first else None, method=first.method if first else None,
                      comparisons=first.comparisons if first else None, source=group.source, category=group.category)


def dpo_pairs(rows: list[RankingRow], mode: str, min_margin: float | None = None) -> list[dict]:
    """TRL prompt/chosen/rejected rows; equal scores make no pair, nor (with `min_margin`) a smaller difference.
    Conversational (prompt as messages, responses as one assistant message) when any prompt was given as messages."""
    if mode not in PAIRS:
        raise ValueError(f"--pairs must be one of {', '.join(PAIRS)}, got {mode!r}")
    conversational = any(r.prompt_messages for r in rows)
    out = []
    for row in rows:
        ranked = row.responses
        chosen_rejected = {"best-worst": [(0, len(ranked) - 1)], "best-rest": [(0, k) for k in range(1, len(ranked))],
                           "all": [(i, j) for i in range(len(ranked)) for j in range(i + 1, len(ranked))],
                           "adjacent": [(k, k + 1) for k in range(len(ranked) - 1)]}[mode]
        for i, j in chosen_rejected:
            margin = ranked[i].score - ranked[j].score
            if margin <= 0 or (min_margin is not None and margin < min_margin):
                continue
            out.append(_dpo(row, ranked[i].text, ranked[j].text, conversational))
    return out


def _dpo(row: RankingRow, chosen: str, rejected: str, conversational: bool) -> dict:
    if not conversational:
        return {"prompt": row.prompt, "chosen": chosen, "rejected": rejected}
    prompt = ([m.model_dump() for m in row.prompt_messages] if row.prompt_messages
              else [{"role": "user", "content": row.prompt}])
    return {"prompt": prompt, "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}]}


def export(db: Path, out: Path | None, fmt: str | None, pairs: str | None, min_margin: float | None,
           hf: Path | None) -> int:
    """`pairs` None: the rankings (groups whose best-worst margin is below `min_margin` left out); else DPO pairs."""
    if pairs is not None and pairs not in PAIRS:
        raise ValueError(f"--pairs must be one of {', '.join(PAIRS)}, got {pairs!r}")

    def rows(store: Store) -> list[dict]:
        found = ranking_rows(store)
        if pairs is not None:
            return dpo_pairs(found, pairs, min_margin)
        return [r.model_dump(mode="json") for r in found if min_margin is None or (r.margin or 0.0) >= min_margin]

    return write_rows(db, out, fmt, hf, rows)
