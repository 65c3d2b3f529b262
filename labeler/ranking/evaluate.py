"""`labeler eval --rank`: rank the prompts of human-rated groups, or of pair files whose pairs share prompts (their
distinct responses become a group, their human labels its votes), and compare with the humans per prompt."""

from collections.abc import Callable
from pathlib import Path

from labeler.errors import LabelerError
from labeler.formats.groups import group_id
from labeler.ingestion import ingest_part, open_inputs
from labeler.judge.bradley_terry import fit
from labeler.judge.judge import Judge
from labeler.ranking import metrics
from labeler.ranking.run import RankResult, rank
from labeler.store import Store
from schemas.rankings import Group, RankEvalMetrics, Response


def evaluate(store: Store, files: list[Path], judge: Judge, budget: int | None = None, limit: int | None = None,
             batch_size: int = 8, progress: Callable | None = None) -> tuple[RankEvalMetrics, RankResult]:
    reports, ids = [], []
    for part in open_inputs(files):
        report = ingest_part(store, part)
        reports.append(report)
        found = report.group_ids or ([] if report.empty else _groups_of_pairs(store, part.label))
        ids.extend(found[:limit] if limit is not None else found)
    ids = list(dict.fromkeys(ids))
    if not ids:
        raise LabelerError(f"{', '.join(map(str, files))}: no prompt with two responses and a human preference "
                           "(rated responses, or human-labelled pairs that share a prompt)")
    ranked = rank(store, [], judge, budget=budget, batch_size=batch_size, group_ids=ids, progress=progress)
    ranked.ingested = reports
    scores = store.rank_scores(judge.judge_key)
    truth = _truth(store, ids)
    rows = [([s.score for s in scores[g]], *truth[g]) for g in ids if g in truth and g in scores]
    if not rows:
        raise LabelerError(f"{', '.join(map(str, files))}: no prompt with a human preference between two responses")
    numbers = metrics.summary(rows)
    return RankEvalMetrics(files=[str(f) for f in files], judge_id=judge.judge_id, judge_key=judge.judge_key,
                           method=ranked.method, judge_calls=ranked.judge_calls, **numbers), ranked


def _groups_of_pairs(store: Store, file_label: str) -> list[str]:
    """The human-labelled pairs just ingested, grouped by prompt: each prompt's distinct responses become a group
    (stored, and linked to the pairs)."""
    by_prompt: dict[tuple, dict] = {}
    for pid, prompt, messages, a, b, source, category, line in store.pairs_by_id(store.staged_pair_ids(True)):
        entry = by_prompt.setdefault((prompt, messages), {"texts": [], "pairs": [], "line": line, "source": source,
                                                          "category": category})
        for text in (a, b):
            if text not in entry["texts"]:
                entry["texts"].append(text)
        entry["pairs"].append((entry["texts"].index(a), entry["texts"].index(b), pid))
    found, links = [], []
    for (prompt, messages), entry in by_prompt.items():
        gid = group_id(prompt, entry["texts"])
        found.append((entry["line"], Group(group_id=gid, prompt=prompt, prompt_messages=messages,
                                           responses=[Response(text=t) for t in entry["texts"]],
                                           source=entry["source"], category=entry["category"])))
        links += [(gid, i, j, pid) for i, j, pid in entry["pairs"]]
    store.save_groups(file_label, found)
    store.link_group_pairs(links)
    return [g.group_id for _, g in found]


def _truth(store: Store, ids: list[str]) -> dict[str, tuple[list[float], list[tuple[int, int]]]]:
    """group id -> (human score per response, human preferences (winner, loser)): ratings where two or more
    responses are rated, else the human votes on the group's pairs (scores: their Bradley-Terry fit)."""
    votes: dict[str, list[tuple[int, int]]] = {}
    for gid, a, b, label in store.human_group_pairs(ids):
        votes.setdefault(gid, []).append((a, b) if label == "A" else (b, a))
    out = {}
    for group in store.groups(ids):
        ratings = [r.rating for r in group.responses]
        rated = [i for i, r in enumerate(ratings) if r is not None]
        if len(rated) >= 2 and all(r is not None for r in ratings):
            prefs = [(i, j) for i in rated for j in rated if ratings[i] > ratings[j]]
            if prefs:
                out[group.group_id] = (ratings, prefs)
        elif group.group_id in votes:
            prefs = votes[group.group_id]
            wins: dict[tuple[int, int], tuple[float, float]] = {}
            for w, l in prefs:
                key = (min(w, l), max(w, l))
                a, b = wins.get(key, (0.0, 0.0))
                wins[key] = (a + 1, b) if w == key[0] else (a, b + 1)
            out[group.group_id] = (fit(len(group.responses), wins).scores, prefs)
    return out
