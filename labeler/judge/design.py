"""Which pairs of one prompt's N responses a pairwise judge compares, round by round.

- N <= FULL_UP_TO, or a budget that covers every pair: the full round robin, N(N-1)/2 pairs in one round.
- Beyond: round 0 pairs every response with one other (a perfect matching drawn from the group id; with N odd the
  one left over meets one more), so each response is compared at least once. Each later round fits Bradley-Terry
  on what was judged and pairs, Swiss style, the leading responses that have not met yet: the top half after
  round 1, the top quarter after round 2, ... down to the top two (a knockout that keeps every result). When the
  leaders have all met, the leader meets the best-placed response it has not met. The design stops at the budget
  (`default_budget`: N - 1 + ceil(log2 N) comparisons) or when the leader has met every other response.

A round is a function of the results of the rounds before it alone, so replaying the design over stored judgments
gives the same pairs: a killed run resumes where it stopped and ends with the rankings of an uninterrupted run.
"""

import hashlib
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from labeler.judge.bradley_terry import fit

FULL_UP_TO = 4
Pair = tuple[int, int]  # (i, j), i < j
Wins = tuple[float, float]  # (comparisons i won, comparisons j won)


def full_cost(n: int) -> int:
    return n * (n - 1) // 2


def default_budget(n: int) -> int:
    return full_cost(n) if n <= FULL_UP_TO else min(full_cost(n), n - 1 + math.ceil(math.log2(n)))


@dataclass
class Progress:
    """Where the design of one group stands: `pending` pairs to judge now (empty: done), `results` so far."""

    pending: list[Pair]
    results: dict[Pair, Wins] = field(default_factory=dict)
    rounds: int = 0

    @property
    def done(self) -> bool:
        return not self.pending


def replay(n: int, key: str, outcome: Callable[[Pair], Wins | None], budget: int | None = None) -> Progress:
    """Run the design over the judgments there are (`outcome(pair)`, None where not judged yet): the pairs of the
    first round with a pair left to judge, or done."""
    if n < 2:
        return Progress([])
    budget = min(budget if budget is not None else default_budget(n), full_cost(n))
    results: dict[Pair, Wins] = {}
    rounds = 0
    while len(results) < budget:
        pairs = _round(n, key, rounds, results, budget == full_cost(n))[: budget - len(results)]
        if not pairs:
            break
        missing = [p for p in pairs if outcome(p) is None]
        if missing:
            return Progress(missing, results, rounds)
        results.update((p, outcome(p)) for p in pairs)
        rounds += 1
    return Progress([], results, rounds)


def _round(n: int, key: str, index: int, results: dict[Pair, Wins], full: bool) -> list[Pair]:
    if full:
        return [p for p in _all_pairs(n) if p not in results]
    if index == 0:
        return _matching(n, key)
    order = fit(n, results).order()
    leaders = order[: max(2, math.ceil(n / 2 ** index))]
    pairs, used = [], set()
    for k, a in enumerate(leaders):
        for b in leaders[k + 1:]:
            if a not in used and b not in used and _pair(a, b) not in results:
                pairs.append(_pair(a, b))
                used.update((a, b))
    if pairs:
        return pairs
    leader = order[0]
    challenger = next((b for b in order[1:] if _pair(leader, b) not in results), None)
    return [_pair(leader, challenger)] if challenger is not None else []


def _pair(a: int, b: int) -> Pair:
    return (a, b) if a < b else (b, a)


def _all_pairs(n: int) -> list[Pair]:
    return [(i, j) for i in range(n) for j in range(i + 1, n)]


def _matching(n: int, key: str) -> list[Pair]:
    order = list(range(n))
    random.Random(hashlib.sha256(key.encode()).hexdigest()).shuffle(order)
    pairs = [_pair(order[k], order[k + 1]) for k in range(0, n - 1, 2)]
    if n % 2:
        pairs.append(_pair(order[-1], order[0]))
    return pairs
