"""Which judged pairs need a person: pure functions, no I/O.

A pair is doubtful when the judge could not decide, its two orders disagree, its votes are tied, or its
confidence is below the threshold. Of the confident rest, a seeded random share is audited, so the accuracy
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

    def __post_init__(self):
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


def route(candidates: list[RoutingCandidate], rules: RoutingRules) -> list[Route]:
    """Doubtful pairs first (in input order), then the audit sample of confident ones."""
    doubtful, audited = [], []
    for c in candidates:
        reason = doubt_reason(c, rules.threshold)
        if reason:
            doubtful.append(Route(c, reason))
        elif audit_draw(c.pair_id, rules.seed) < rules.audit_rate:
            audited.append(Route(c, AUDIT))
    return doubtful + audited
