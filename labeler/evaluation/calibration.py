"""Temperature scaling of the judge's confidence: pure functions, no I/O.

The judge's evidence for A is a score `s`, the logit of its pooled P(A):
- direct: s = logit(p_a), p_a clipped to [1e-6, 1 - 1e-6];
- cot: s = ln((votes_a + 0.5) / (votes_b + 0.5)), the logit of the vote share with half a vote added to each
  side, so a unanimous vote is finite and 8-0 counts as more sure than 2-0.
One parameter, the temperature T > 0, is fitted by maximum likelihood of the human labels:
P(human says A) = sigmoid(s / T). The calibrated confidence of the judge's label is sigmoid(|s| / T). It never
changes a label, and with no calibration stored every confidence stays exactly what the judge wrote.
`labeler.store.calibrations.CALIBRATED_CONFIDENCE` is the same formula in SQL (a test keeps them equal).
"""

import math
from collections.abc import Sequence

P_CLIP = 1e-6
MIN_SCALE, MAX_SCALE = 1e-3, 1e3  # 1 / T is searched in this range: T from 0.001 (sharpen) to 1000 (flatten)


def score(mode: str, p_a: float | None, votes_a: int, votes_b: int) -> float | None:
    """The judge's evidence for A on the logit scale (None when it has none)."""
    if mode == "cot":
        return math.log((votes_a + 0.5) / (votes_b + 0.5))
    if p_a is None:
        return None
    p = min(max(p_a, P_CLIP), 1.0 - P_CLIP)
    return math.log(p / (1.0 - p))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def calibrated_confidence(s: float | None, temperature: float, raw: float, decided: bool = True) -> float:
    """sigmoid(|s| / T); the raw confidence when the judge gave no label or no score."""
    if not decided or s is None:
        return raw
    return _sigmoid(abs(s) / temperature)


def calibrated(j, temperature: float | None) -> float:
    """The confidence to report for a judgment-like record (`mode`, `p_a`, `votes_a`, `votes_b`, `label`,
    `confidence`: a `Judgment` or an `EvalRow`) under a stored temperature; the raw confidence when there is none.
    The one Python place that applies a temperature; `CALIBRATED_CONFIDENCE` in SQL is its twin."""
    if temperature is None:
        return j.confidence
    return calibrated_confidence(score(j.mode, j.p_a, j.votes_a, j.votes_b), temperature, j.confidence,
                                 j.label is not None)


def fit_temperature(scores: Sequence[float], human_is_a: Sequence[bool]) -> float:
    """Maximum-likelihood T for P(A) = sigmoid(s / T), by bisection on the (monotone) gradient in w = 1 / T.

    No usable evidence (empty, or every score 0) gives T = 1, the identity. A judge that is no better than
    chance gets the largest T (every confidence close to 0.5); a perfect separator gets the smallest.
    """
    data = [(s, y) for s, y in zip(scores, human_is_a) if s]
    if not data:
        return 1.0

    def gradient(w: float) -> float:  # d NLL / dw, increasing in w because the NLL is convex
        return sum((_sigmoid(w * s) - y) * s for s, y in data)

    if gradient(MIN_SCALE) >= 0:
        return 1.0 / MIN_SCALE
    if gradient(MAX_SCALE) <= 0:
        return 1.0 / MAX_SCALE
    lo, hi = math.log(MIN_SCALE), math.log(MAX_SCALE)
    for _ in range(60):  # bisection on log w: 60 halvings of a 14-wide interval is far below float precision
        mid = (lo + hi) / 2
        if gradient(math.exp(mid)) < 0:
            lo = mid
        else:
            hi = mid
    return 1.0 / math.exp((lo + hi) / 2)


def nll(scores: Sequence[float], human_is_a: Sequence[bool], temperature: float) -> float:
    """Mean negative log-likelihood of the human labels under P(A) = sigmoid(s / T)."""
    total = 0.0
    for s, y in zip(scores, human_is_a):
        p = min(max(_sigmoid(s / temperature), 1e-12), 1 - 1e-12)
        total -= math.log(p if y else 1.0 - p)
    return total / len(scores) if scores else 0.0
