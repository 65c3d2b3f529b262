"""Adaptive self-consistency: stop sampling a pair once its vote is settled.

Rule (Adaptive-Consistency, Aggarwal et al. 2023, with a Beta posterior): after each round, with `a` votes
for A and `b` for B over both orders, the posterior on P(A wins a vote) under a uniform prior is
Beta(a + 1, b + 1). Stop when P(share > 1/2) >= `confidence` or <= 1 - `confidence`, or when the leader can no
longer be overtaken by the votes left in the budget.
"""

from math import comb


def prob_share_above_half(a: int, b: int) -> float:
    """P(p > 1/2) for p ~ Beta(a + 1, b + 1), exact for integer counts (a binomial tail)."""
    n = a + b + 1
    return sum(comb(n, k) for k in range(a + 1)) / 2**n


def settled(a: int, b: int, remaining: int, confidence: float) -> bool:
    if abs(a - b) > remaining:
        return True
    p = prob_share_above_half(a, b)
    return p >= confidence or p <= 1.0 - confidence
