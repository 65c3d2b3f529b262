"""Which judged pairs need a person: pure functions, no I/O.

A pair is doubtful when the judge could not decide, its two orders disagree, its votes are tied, or its
confidence is below the threshold; with a budget (`most`: N pairs, or `most_share` of them), the N most doubtful
pairs instead, whatever their confidence (for a probe ensemble the confidence already falls where its heads
disagree). Of the confident rest, a seeded random share is audited, so the accuracy
of the labels nobody reviews can be estimated. The audit draw is a hash of (seed, pair id): the same pair
gets the same draw on every run, and adding pairs never changes the draw of the old ones.

A ranking (N responses per prompt, `review push --rankings`) is doubtful when its best two responses are within
the judge's uncertainty; the budget and the audit draw work as for pairs, per prompt.
"""

import hashlib
import math
from dataclasses import dataclass
from typing import NamedTuple

from labeler.judge.bradley_terry import Z95
from schemas import RoutingCandidate
from schemas.rankings import RankRoute, ResponseScore

# In priority order: a pair is routed for the first reason that applies.
DOUBT_REASONS = ("undecided", "order_inconsistent", "split_votes", "low_confidence")
AUDIT = "audit"
TOP_TWO_OVERLAP = "top_two_overlap"  # a ranking whose best two are within the judge's uncertainty (95 %)
MOST_DOUBTFUL = "most_doubtful"  # a ranking in the budget that is not in doubt by the rule above


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


def ranking_doubt(group_id: str, scores: list[ResponseScore]) -> RankRoute:
    """The judge's order (best first) and how sure it is of its best response: the margin of the best over the second
    and that margin in standard errors (`z`; None where the judge gives no uncertainty)."""
    ordered = sorted(scores, key=lambda s: (-s.score, s.idx))
    best, second = ordered[0], ordered[1]
    margin = best.score - second.score
    z = None
    if best.uncertainty is not None and second.uncertainty is not None:
        sd = math.hypot(best.uncertainty, second.uncertainty)
        z = margin / sd if sd > 0 else (math.inf if margin > 0 else 0.0)
    return RankRoute(group_id=group_id, n=len(scores), route_reason=TOP_TWO_OVERLAP, judge_key=best.judge_key,
                     judge_id=best.judge_id, judge_order=[s.idx for s in ordered], margin=margin, z=z)


def route_rankings(candidates: dict[str, list[ResponseScore]], rules: RoutingRules) -> list[RankRoute]:
    """Rankings whose best two overlap (z below 1.96, or an exact tie where the judge gives no uncertainty); with a
    budget, the N least sure instead (by z, then margin), whatever they are; then the audit sample of the rest."""
    found = [ranking_doubt(g, s) for g, s in candidates.items()]
    in_doubt = [r.z < Z95 if r.z is not None else r.margin <= 0 for r in found]
    if rules.most is not None or rules.most_share is not None:
        n = rules.most if rules.most is not None else round(rules.most_share * len(found))
        ranked = sorted(zip(found, in_doubt), key=lambda x: (x[0].z if x[0].z is not None else math.inf, x[0].margin))
        chosen = [r.model_copy(update={"route_reason": TOP_TWO_OVERLAP if doubt else MOST_DOUBTFUL})
                  for r, doubt in ranked[:n]]
        rest = [r for r, _ in ranked[n:]]
    else:
        chosen = [r for r, doubt in zip(found, in_doubt) if doubt]
        rest = [r for r, doubt in zip(found, in_doubt) if not doubt]
    audited = [r.model_copy(update={"route_reason": AUDIT}) for r in rest
               if audit_draw(r.group_id, rules.seed) < rules.audit_rate]
    return chosen + audited
