"""Rankings against human preferences, per prompt: pure functions, no I/O.

A prompt's human truth is a list of (winner, loser) response indices (two rated responses with different ratings,
or a human-labelled pair) plus, for Kendall's tau and top-1, a human score per response (its rating, or a
Bradley-Terry fit of the votes).
"""

import random
from collections.abc import Sequence

from labeler.evaluation.metrics import wilson_interval

BOOTSTRAP = 2000


def agreements(scores: Sequence[float], prefs: Sequence[tuple[int, int]]) -> int:
    """Human preferences (winner, loser) the scores order the same way; equal scores count as wrong."""
    return sum(scores[w] > scores[l] for w, l in prefs)


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's tau-b of two score lists (ties in either count as neither concordant nor discordant, and shrink
    the denominator); None when either list is all ties."""
    concordant = discordant = ties_x = ties_y = 0
    n = len(x)
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    denominator = ((concordant + discordant + ties_x) * (concordant + discordant + ties_y)) ** 0.5
    return (concordant - discordant) / denominator if denominator else None


def unique_best(scores: Sequence[float]) -> int | None:
    best = max(scores)
    found = [i for i, s in enumerate(scores) if s == best]
    return found[0] if len(found) == 1 else None


def mean_ci(values: Sequence[float], seed: int = 0) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the mean."""
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(values, k=len(values))) / len(values) for _ in range(BOOTSTRAP))
    return means[int(0.025 * BOOTSTRAP)], means[int(0.975 * BOOTSTRAP) - 1]


def summary(groups: Sequence[tuple[list[float], list[float], list[tuple[int, int]]]]) -> dict:
    """`groups`: (judge scores, human scores, human preferences) per prompt -> the RankEvalMetrics numbers."""
    pairs = sum(len(p) for _, _, p in groups)
    agreed = sum(agreements(s, p) for s, _, p in groups)
    taus = [t for t in (kendall_tau_b(s, h) for s, h, _ in groups) if t is not None]
    tops = [(unique_best(s) == best, 1 / len(s)) for s, h, _ in groups if (best := unique_best(h)) is not None]
    hits = sum(hit for hit, _ in tops)
    return dict(
        groups=len(groups), pairs=pairs, pairwise_agreement=agreed / pairs if pairs else 0.0,
        pairwise_ci95=wilson_interval(agreed, pairs), tau_groups=len(taus),
        kendall_tau=sum(taus) / len(taus) if taus else None, kendall_tau_ci95=mean_ci(taus) if taus else None,
        top1_groups=len(tops), top1=hits / len(tops) if tops else None,
        top1_ci95=wilson_interval(hits, len(tops)) if tops else None,
        top1_chance=sum(c for _, c in tops) / len(tops) if tops else None)
