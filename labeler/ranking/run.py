"""The rank stage: ingest groups of N responses, then rank every group the judge has not ranked yet.

A reward judge scores each response once. A pairwise judge compares the pairs `judge.design` picks, round by
round; the pairs are ordinary pairs (same store, same resume, same provenance) and the ranking is a Bradley-Terry
fit of their judgments. A round's judgments are committed together and the groups' scores in chunks, so a killed
run resumes where it stopped."""

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from labeler.ingestion import DEFAULT_MAX_CHARS, FileReport, ingest_files
from labeler.judge import design
from labeler.judge.bradley_terry import fit
from labeler.judge.judge import Judge
from labeler.progress import silent
from labeler.store import FieldMap, Store
from schemas.rankings import Group, ResponseScore

GROUPS_PER_COMMIT = 8


@dataclass
class RankResult:
    ingested: list[FileReport]
    judge_id: str
    judge_key: str
    method: str  # reward | bt
    run_id: str | None = None
    pending: int = 0  # groups to rank when the run started
    ranked: list[str] = field(default_factory=list)  # group ids ranked by this run
    judge_calls: int = 0  # reward: responses scored; bt: pairs judged (each in both orders)
    seconds: float = 0.0


def method_of(judge: Judge) -> str:
    return "reward" if hasattr(judge, "score_responses") else "bt"


def rank(store: Store, files: list[Path], judge: Judge, fields: FieldMap = FieldMap(), strict: bool = False,
         max_chars: int = DEFAULT_MAX_CHARS, budget: int | None = None, limit: int | None = None,
         batch_size: int = 8, group_ids: list[str] | None = None,
         progress: Callable[[int], Callable] | None = None) -> RankResult:
    """Ingest `files`, then rank each group (of `group_ids`, when given) without scores from `judge`. `budget`:
    at most this many pairs compared per group (pairwise judges; default `design.default_budget`)."""
    if budget is not None and budget < 1:
        raise ValueError(f"budget must be >= 1, got {budget}")
    reports = ingest_files(store, files, fields, strict, max_chars)
    pending = store.unranked_groups(judge.judge_key, limit)
    if group_ids is not None:
        wanted = set(group_ids)
        pending = [g for g in pending if g in wanted]
    result = RankResult(reports, judge.judge_id, judge.judge_key, method_of(judge), pending=len(pending))
    if not pending:
        return result
    result.run_id = run_id = uuid.uuid4().hex[:12]
    params = {**vars(judge.config), "files": [str(f) for f in files], "budget": budget, "method": result.method}
    store.start_run(run_id, "rank", len(pending), judge.judge_key, judge.judge_id, judge.config.mode,
                    judge.config.samples, params)
    store.release()
    started, status = time.perf_counter(), "interrupted"
    try:
        with (progress or silent)(len(pending)) as advance:
            for start in range(0, len(pending), GROUPS_PER_COMMIT):
                groups = store.groups(pending[start:start + GROUPS_PER_COMMIT])
                if result.method == "reward":
                    scores = _rewards(judge, groups, run_id)
                    result.judge_calls += sum(len(g.responses) for g in groups)
                else:
                    scores, calls = _pairwise(store, judge, groups, budget, batch_size, run_id)
                    result.judge_calls += calls
                store.save_scores(run_id, scores, len(groups))
                store.release()
                result.ranked.extend(g.group_id for g in groups)
                advance(len(groups))
        status = "finished"
    finally:
        result.seconds = time.perf_counter() - started
        store.finish_run(run_id, status)
    return result


def _rewards(judge: Judge, groups: list[Group], run_id: str) -> list[ResponseScore]:
    found = judge.score_responses([(g.prompt, [r.text for r in g.responses]) for g in groups])
    return [ResponseScore(group_id=g.group_id, idx=i, judge_key=judge.judge_key, judge_id=judge.judge_id,
                          method="reward", score=score, uncertainty=spread, comparisons=0, run_id=run_id)
            for g, scored in zip(groups, found) for i, (score, spread) in enumerate(scored)]


def _pairwise(store: Store, judge: Judge, groups: list[Group], budget: int | None, batch_size: int,
              run_id: str) -> tuple[list[ResponseScore], int]:
    """Judge the design's rounds for these groups together until every group's design is done; then fit."""
    ids = [g.group_id for g in groups]
    calls = 0
    while True:
        progress = _replay(store, judge, groups, budget)
        wanted = [(gid, i, j) for gid, p in progress.items() for i, j in p.pending]
        if not wanted:
            break
        links = store.group_pairs(ids)
        store.add_group_pairs([(gid, i, j) for gid, i, j in wanted if _link(links[gid], i, j) is None])
        links = store.group_pairs(ids)
        pair_ids = list(dict.fromkeys(_link(links[gid], i, j)[0] for gid, i, j in wanted))
        pairs = store.pending_pairs(judge.judge_key, pair_ids=pair_ids)
        judged: tuple[list, list] = ([], [])
        for start in range(0, len(pairs), batch_size):
            judgments, samples = judge.judge(pairs[start:start + batch_size], run_id)
            judged[0].extend(judgments)
            judged[1].extend(samples)
        store.save_judged(*judged)  # once per round: each commit (and reopening the store) costs about a second
        calls += len(judged[0])
    scores = []
    for g in groups:
        bt = fit(len(g.responses), progress[g.group_id].results)
        scores += [ResponseScore(group_id=g.group_id, idx=i, judge_key=judge.judge_key, judge_id=judge.judge_id,
                                 method="bt", score=s, uncertainty=e, comparisons=len(progress[g.group_id].results),
                                 run_id=run_id)
                   for i, (s, e) in enumerate(zip(bt.scores, bt.errors))]
    return scores, calls


def _replay(store: Store, judge: Judge, groups: list[Group], budget: int | None) -> dict[str, design.Progress]:
    """Each group's design replayed over the stored judgments of this judge."""
    links = store.group_pairs([g.group_id for g in groups])
    judged = store.pair_outcomes(judge.judge_key, [pid for by_pair in links.values() for pid in by_pair.values()])
    soft = judge.config.mode == "direct"

    def outcome_for(gid: str):
        def outcome(pair: design.Pair) -> design.Wins | None:
            found = _link(links[gid], *pair)
            if found is None or found[0] not in judged:
                return None
            votes_a, votes_b, p_a = judged[found[0]]
            wins = (2 * p_a, 2 * (1 - p_a)) if soft and p_a is not None else (float(votes_a), float(votes_b))
            return wins if not found[1] else (wins[1], wins[0])
        return outcome

    return {g.group_id: design.replay(len(g.responses), g.group_id, outcome_for(g.group_id), budget) for g in groups}


def _link(by_pair: dict[tuple[int, int], str], i: int, j: int) -> tuple[str, bool] | None:
    """(pair id, swapped) of the stored pair comparing responses i and j (i as A, else swapped), or None."""
    if (i, j) in by_pair:
        return by_pair[(i, j)], False
    if (j, i) in by_pair:
        return by_pair[(j, i)], True
    return None
