"""Pool one pair's samples (both orders) into a label, a confidence and a representative rationale."""

import math
from dataclasses import dataclass

from schemas import Sample


@dataclass
class Pooled:
    label: str | None
    confidence: float
    p_a: float | None
    votes_a: int
    votes_b: int
    abstained: int
    order_consistent: bool | None
    label_ab: str | None
    label_ba: str | None
    rationale: str


def prob_a(sample: Sample) -> float | None:
    """P(original A) from the two verdict-token log-probs, renormalised over {A, B}."""
    if sample.logprob_a is None or sample.logprob_b is None:
        return None
    diff = sample.logprob_b - sample.logprob_a
    return 1.0 / (1.0 + math.exp(min(diff, 700.0)))


def _majority(samples: list[Sample]) -> str | None:
    a = sum(s.verdict == "A" for s in samples)
    b = sum(s.verdict == "B" for s in samples)
    if a != b:
        return "A" if a > b else "B"
    soft = [p for p in map(prob_a, samples) if p is not None]
    if a == 0 or not soft or sum(soft) / len(soft) == 0.5:
        return None
    return "A" if sum(soft) / len(soft) > 0.5 else "B"


def pool_direct(samples: list[Sample]) -> Pooled:
    """Direct GenRM: average P(A) of the two orders (this cancels a constant letter preference)."""
    probs = [p for p in map(prob_a, samples) if p is not None]
    # An order whose letters were not read (a server's top log-probs showed neither) leaves the pair unlabelled:
    # one order alone would carry the judge's letter preference that pooling both orders cancels.
    p_a = sum(probs) / len(probs) if probs and len(probs) == len(samples) else None
    label = None if p_a is None or p_a == 0.5 else "A" if p_a > 0.5 else "B"
    by_pos = {s.position: s for s in samples}
    label_ab, label_ba = (by_pos[p].verdict if p in by_pos else None for p in ("AB", "BA"))
    shown = ", ".join(f"{s.position}: " + ("no letter read" if prob_a(s) is None else f"P(A)={prob_a(s):.3f}")
                      for s in samples)
    pooled = "undecided" if p_a is None else f"pooled P(A)={p_a:.3f}"
    return Pooled(
        label=label,
        confidence=0.0 if p_a is None else max(p_a, 1.0 - p_a),
        p_a=p_a,
        votes_a=sum(s.verdict == "A" for s in samples),
        votes_b=sum(s.verdict == "B" for s in samples),
        abstained=sum(s.verdict is None for s in samples),
        order_consistent=None if None in (label_ab, label_ba) else label_ab == label_ba,
        label_ab=label_ab,
        label_ba=label_ba,
        rationale=f"Direct verdict from the verdict-token probabilities ({shown}); {pooled}.",
    )


def pool_cot(samples: list[Sample]) -> Pooled:
    """CoT-GenRM self-consistency: majority vote over every sample of both orders."""
    votes_a = sum(s.verdict == "A" for s in samples)
    votes_b = sum(s.verdict == "B" for s in samples)
    decided = votes_a + votes_b
    label = _majority(samples)
    label_ab = _majority([s for s in samples if s.position == "AB"])
    label_ba = _majority([s for s in samples if s.position == "BA"])
    p_a = votes_a / decided if decided else None
    if label is None:
        confidence = 0.0
    else:
        confidence = max(votes_a, votes_b) / decided
    return Pooled(
        label=label,
        confidence=confidence,
        p_a=p_a,
        votes_a=votes_a,
        votes_b=votes_b,
        abstained=len(samples) - decided,
        order_consistent=None if None in (label_ab, label_ba) else label_ab == label_ba,
        label_ab=label_ab,
        label_ba=label_ba,
        rationale=_representative(samples, label),
    )


SWAPPED_NOTE = ("(Written with the responses swapped: this rationale's Response A is response B and its "
                "Response B is response A.)\n")


def _representative(samples: list[Sample], label: str | None) -> str:
    """The most confident winning sample, from the order that shows response_a first where there is one, so the
    letters in the text are the pair's own; a swapped-order rationale says so."""
    winners = [s for s in samples if s.verdict == label and label is not None]
    if not winners:
        return samples[0].text.strip() if samples else ""

    def support(s: Sample) -> float:
        p = prob_a(s)
        return 0.0 if p is None else (p if label == "A" else 1.0 - p)

    best = max([s for s in winners if s.position == "AB"] or winners, key=support)
    return (SWAPPED_NOTE if best.position == "BA" else "") + best.text.strip()
