"""The pairwise judge's sparse design (judge/design.py) and the per-prompt Bradley-Terry fit (judge/bradley_terry.py),
against judges whose truth is known."""

import math
import random

import pytest

from labeler.judge import design
from labeler.judge.bradley_terry import fit


def votes_from(quality: list[float], beta: float, rng: random.Random, per_pair: int = 2) -> dict:
    """A judge that prefers i over j with P = sigmoid(beta (q_i - q_j)), `per_pair` votes per pair (two orders)."""
    out = {}
    for i in range(len(quality)):
        for j in range(i + 1, len(quality)):
            p = 1 / (1 + math.exp(-beta * (quality[i] - quality[j])))
            wins = sum(rng.random() < p for _ in range(per_pair))
            out[(i, j)] = (float(wins), float(per_pair - wins))
    return out


def test_small_groups_get_the_full_round_robin_in_one_round():
    progress = design.replay(4, "g", lambda pair: None)
    assert progress.pending == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)] and progress.rounds == 0
    done = design.replay(4, "g", lambda pair: (1.0, 1.0))
    assert done.done and len(done.results) == 6 == design.full_cost(4)


def test_the_schedule_starts_with_a_matching_then_narrows_to_the_leaders():
    n, quality = 8, [0, 1, 2, 3, 4, 5, 6, 7]  # response 7 is the best; a judge that is never wrong
    perfect = {(i, j): (1.0, 0.0) if quality[i] > quality[j] else (0.0, 1.0) for i in range(n) for j in range(i + 1, n)}
    first = design.replay(n, "g1", lambda pair: None)
    assert len(first.pending) == 4 and sorted(x for p in first.pending for x in p) == list(range(n))
    seen = []
    while not (progress := design.replay(n, "g1", lambda pair: perfect[pair] if pair in seen else None)).done:
        if progress.rounds == 1:  # after the matching: the top half (the four winners) meet in two pairs
            assert len(progress.pending) == 2
            winners = {max(p) for p in first.pending}
            assert {x for p in progress.pending for x in p} == winners
        seen += progress.pending
    assert len(progress.results) == design.default_budget(8) == 10 <= 0.4 * design.full_cost(8)
    assert fit(n, progress.results).order()[0] == 7
    assert all(any(x in p for p in progress.results) for x in range(n))  # every response compared at least once
    again = design.replay(n, "g1", lambda pair: perfect[pair])  # replaying over stored results: the same pairs
    assert again.results == progress.results


def test_a_replay_over_a_partly_judged_round_asks_only_for_its_missing_pairs():
    n = 8
    votes = votes_from(list(range(n)), 1.0, random.Random(0))
    full = design.replay(n, "g2", lambda pair: votes[pair])
    judged = list(full.results)
    partial = judged[:5]  # round 0 (4 pairs) and one pair of round 1
    progress = design.replay(n, "g2", lambda pair: votes[pair] if pair in partial else None)
    assert progress.rounds == 1 and progress.pending == [judged[5]]  # round 1 is judged[4:6]
    assert set(progress.pending).isdisjoint(partial)


def test_budget_caps_the_comparisons_per_prompt():
    progress = design.replay(16, "g3", lambda pair: (1.0, 1.0), budget=12)
    assert len(progress.results) == 12
    assert len(design.replay(16, "g3", lambda pair: (1.0, 1.0), budget=500).results) == design.full_cost(16)


def test_the_sparse_design_picks_the_round_robins_best_at_under_40_percent_of_its_calls():
    """The issue's target for N = 8 on a simulated judge of known quality (beta = 4: a judge that prefers a response
    one standard deviation better 98 % of the time); benchmarks/rank_cost.py measures it on real judges."""
    rng, agree, cost, trials = random.Random(1), 0, 0, 200
    for t in range(trials):
        quality = [rng.gauss(0, 1) for _ in range(8)]
        votes = votes_from(quality, 4.0, rng)
        progress = design.replay(8, f"p{t}", lambda pair: votes[pair])
        agree += fit(8, progress.results).order()[0] == fit(8, votes).order()[0]
        cost += len(progress.results)
    assert cost / trials / design.full_cost(8) <= 0.4
    assert agree / trials >= 0.9


def test_the_bradley_terry_fit_recovers_known_scores_with_intervals_that_cover_them():
    truth = [-1.5, -0.5, 0.0, 0.7, 1.3]
    rng, covered, total = random.Random(2), 0, 0
    for _ in range(40):
        votes = votes_from(truth, 1.0, rng, per_pair=60)
        found = fit(len(truth), votes)
        for i, t in enumerate(truth):
            low, high = found.interval(i)
            covered += low <= t - sum(truth) / len(truth) <= high
            total += 1
    assert covered / total >= 0.88  # 95 % intervals (a Laplace approximation; the prior shrinks a little)
    votes = votes_from(truth, 1.0, random.Random(3), per_pair=2000)
    found = fit(len(truth), votes)
    centred = [t - sum(truth) / len(truth) for t in truth]
    assert max(abs(a - b) for a, b in zip(found.scores, centred)) < 0.1
    assert found.order() == [4, 3, 2, 1, 0]


def test_a_response_that_won_everything_gets_a_finite_score_and_a_wide_interval():
    found = fit(3, {(0, 1): (2.0, 0.0), (0, 2): (2.0, 0.0)})
    assert found.order()[0] == 0 and math.isfinite(found.scores[0])
    assert found.errors[0] > 1.0
    assert found.errors[1] > found.errors[0] * 0.5


@pytest.mark.parametrize("n", [2, 3, 5, 9])
def test_every_pair_the_design_asks_for_is_a_real_pair_once(n):
    progress = design.replay(n, "g4", lambda pair: (1.0, 0.0) if pair[0] % 2 else (0.0, 1.0), budget=100)
    assert len(set(progress.results)) == len(progress.results) == design.full_cost(n)
    assert all(0 <= i < j < n for i, j in progress.results)
