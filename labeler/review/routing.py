"""Which judged pairs need a person: pure functions, no I/O.

A pair is doubtful when the judge could not decide, its two orders disagree, its votes are tied, or its
confidence is below the threshold; with a budget (`most`: N pairs, or `most_share` of them), the N most doubtful
pairs instead, whatever their confidence (for a probe ensemble the confidence already falls where its heads
disagree). Of the confident rest, a seeded random share is audited, so the accuracy
of the labels nobody reviews can be estimated. The audit draw is a hash of (seed, pair id): the same pair
gets the same draw on every run, and adding pairs never changes the draw of the old ones.
"""

import hashlib
from dataclasses import dataclass
from typing import NamedTuple

from schemas import RoutingCandidate

# In priority order: a pair is routed for the first reason that applies.
DOUBT_REASONS = ("undecided", "order_inconsistent", "split_votes", "low_confidence")
AUDIT = "audit"


@dataclass(frozen=True)
class RoutingRules:
    threshold: float = 0.7
    audit_rate: float = 0.05
    seed: int = 0
    most: int | None = None  # route the N most doubtful pairs (instead of those under the threshold)
    most_share: float | None = None  # ... or this share of the judged pairs

    def __post_init__(self):
        if self.most is not None and self.most_share is not None:
            raise ValueError("give the budget as a number of pairs or as a share, not both")
        if self.most is not None and self.most < 0:
            raise ValueError(f"the number of most doubtful pairs must be >= 0, got {self.most}")
        if self.most_share is not None and not 0.0 < self.most_share <= 1.0:
            raise ValueError(f"the share of most doubtful pairs must be within (0, 100] %, got {self.most_share:.0%}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be within [0, 1], got {self.threshold}")
        if not 0.0 <= self.audit_rate <= 1.0:
            raise ValueError(f"audit rate must be within [0, 1], got {self.audit_rate}")


class Route(NamedTuple):
    candidate: RoutingCandidate
    reason: str


def doubt_reason(c: RoutingCandidate, threshold: float) -> str | None:
    """Why a person should look at this label, or None when the judge is confident."""
    if c.label is None:
        return "undecided"
    if c.order_consistent is False:
        return "order_inconsistent"
    if c.votes_a == c.votes_b and c.votes_a > 0:
        return "split_votes"  # the label came from a tie-break, whatever the confidence says
    if c.confidence < threshold:
        return "low_confidence"
    return None


def audit_draw(pair_id: str, seed: int) -> float:
    """A uniform number in [0, 1) fixed by (seed, pair id)."""
    digest = hashlib.sha256(f"labeler-audit\x1f{seed}\x1f{pair_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def doubt_rank(c: RoutingCandidate) -> tuple[int, float]:
    """Sort key, most doubtful first: by the first reason that applies at any threshold, then by confidence."""
    reason = doubt_reason(c, 2.0)  # every decided, consistent pair is "low_confidence" here
    return DOUBT_REASONS.index(reason), c.confidence


def route(candidates: list[RoutingCandidate], rules: RoutingRules) -> list[Route]:
    """Doubtful pairs first (in input order; with a budget, most doubtful first), then the audit sample of the
    others."""
    if rules.most is not None or rules.most_share is not None:
        n = rules.most if rules.most is not None else round(rules.most_share * len(candidates))
        ranked = sorted(candidates, key=doubt_rank)
        doubtful = [Route(c, doubt_reason(c, 2.0)) for c in ranked[:n]]
        rest = ranked[n:]
    else:
        doubtful = [Route(c, reason) for c in candidates if (reason := doubt_reason(c, rules.threshold))]
        chosen = {r.candidate.pair_id for r in doubtful}
        rest = [c for c in candidates if c.pair_id not in chosen]
    audited = [Route(c, AUDIT) for c in rest if audit_draw(c.pair_id, rules.seed) < rules.audit_rate]
    return doubtful + audited
