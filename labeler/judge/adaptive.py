"""Adaptive self-consistency: stop sampling a pair once more samples are unlikely to change its label.

Sampling runs in rounds of `adaptive_round` samples per order. After each round a pair stops when either

1. its pooled vote is settled (Adaptive-Consistency, Aggarwal et al. 2023, with a Beta posterior): with `a`
   votes for A and `b` for B over both orders, the posterior on P(a vote says A) under a uniform prior is
   Beta(a + 1, b + 1); stop when P(share > 1/2) >= `confidence` or <= 1 - `confidence`, or when the leader
   can no longer be overtaken by the votes left in the budget; or
2. within each order, the latest round's samples (at least the latest WINDOW) all name the same letter
   (Early-Stopping Self-Consistency, Li et al. 2024, with the round as the window, applied per order). Per
   order because a position-biased judge names the first-shown letter in both orders: its pooled vote splits
   and never settles, while each order repeats itself, so more samples add cost and no information. Such a
   pair stops order-inconsistent, its label read from the verdict probabilities, and is routed to review like
   any order-inconsistent pair.
"""

from math import comb

WINDOW = 2  # rule 2 looks at no fewer than this many latest samples per order


def prob_share_above_half(a: int, b: int) -> float:
    """P(p > 1/2) for p ~ Beta(a + 1, b + 1), exact for integer counts (a binomial tail)."""
    n = a + b + 1
    return sum(comb(n, k) for k in range(a + 1)) / 2**n


def settled(a: int, b: int, remaining: int, confidence: float) -> bool:
    if abs(a - b) > remaining:
        return True
    p = prob_share_above_half(a, b)
    return p >= confidence or p <= 1.0 - confidence


def orders_repeat(latest: dict[str, list[str | None]]) -> bool:
    """Rule 2: every order's latest round is unanimous (an abstention breaks unanimity), over at least WINDOW
    samples each (one sample is no repetition: with rounds of one, the rule waits for the second)."""
    return bool(latest) and all(len(v) >= WINDOW and len(set(v)) == 1 and v[0] is not None for v in latest.values())
