"""Agreement metrics of a judge against human labels: pure functions over store rows, no I/O.

Definitions (README `labeler eval` repeats them):
- accuracy: share of pairs whose judge label equals the human label; an undecided pair (every sample
  abstained) counts as a disagreement. 95 % interval: Wilson score interval (no normal-approximation
  collapse at 0 or 1, good coverage for small n).
- position bias: per order, the share of that order's verdicts naming the response shown first;
  position consistency: share of pairs, among those where both orders gave a label, whose orders agree.
- maj@k: the label the pooling rule of annotate gives when only the samples with sample_idx < k of each order
  vote (2k votes). Samples are used in their stored order (they are i.i.d. draws, so the first k are a fair
  k-sample run); a tied vote is broken as annotate breaks it, by the mean verdict-token P(A) of the voting
  samples, and is undecided (wrong) when that is missing or exactly 0.5. maj@K therefore equals the accuracy.
- ECE: `bins` equal-width bins over [0.5, 1] (a decided label's confidence is never below 0.5; a value on an
  edge goes to the upper bin, 1.0 to the last), sum over bins of (bin size / n) * |accuracy - mean confidence|,
  over decided pairs only.
- coverage curve: keeping the labels with confidence >= t, for every distinct confidence t from the highest
  down: coverage = kept / n, accuracy of the kept. Undecided pairs have confidence 0 and come last.
  gain at 70 %: accuracy of the 70 % most confident labels minus accuracy of all.
- longer wins: the baseline judge that names the longer response (in characters; equal lengths count as wrong);
  human chose the shorter: the judge's accuracy on the pairs where the longer response lost, so a judge that
  leans on length cannot hide behind the baseline.
"""

import math
from collections import defaultdict
from collections.abc import Callable, Sequence

from labeler.evaluation.calibration import calibrated, fit_temperature, score
from labeler.judge.aggregate import pool_cot
from schemas.records import (CalibrationSummary, CoverageChoice, CoveragePoint, EvalMetrics, EvalRow,
                             GroupMetrics, MajorityPoint, ReliabilityBin, Sample)

Z95 = 1.959963984540054
EPS = 1e-9


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials ((0, 1) when n = 0)."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


def correct(row: EvalRow) -> bool:
    return row.label is not None and row.label == row.human


def a_rate_by_order(rows: Sequence[EvalRow]) -> dict[str, float | None]:
    """Share of verdicts naming the response shown first: AB shows response_a first, BA shows response_b."""
    ab = [r.label_ab for r in rows if r.label_ab is not None]
    ba = [r.label_ba for r in rows if r.label_ba is not None]  # stored in original letters: "B" = shown first
    return {"AB": sum(x == "A" for x in ab) / len(ab) if ab else None,
            "BA": sum(x == "B" for x in ba) / len(ba) if ba else None}


def position_consistency(rows: Sequence[EvalRow]) -> tuple[float | None, int]:
    checked = [r.order_consistent for r in rows if r.order_consistent is not None]
    return (sum(checked) / len(checked) if checked else None), len(checked)


def majority_at_k(rows: Sequence[EvalRow], samples: Sequence[Sample]) -> list[MajorityPoint]:
    """maj@1 .. maj@K from the stored samples (see the module docstring); no sampling."""
    by_pair: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by_pair[s.pair_id].append(s)
    k_max = max((r.samples for r in rows), default=0)
    points = []
    for k in range(1, k_max + 1):
        labels = [pool_cot([s for s in by_pair[r.pair_id] if s.sample_idx < k]).label if by_pair[r.pair_id] else None
                  for r in rows]
        agreed = sum(label == r.human for label, r in zip(labels, rows))
        points.append(MajorityPoint(k=k, votes=2 * k, accuracy=agreed / len(rows), ci95=wilson_interval(agreed, len(rows)),
                                    undecided=sum(label is None for label in labels)))
    return points


def reliability(confidences: Sequence[float], hits: Sequence[bool], bins: int = 10) -> list[ReliabilityBin]:
    """Equal-width bins over [0.5, 1]: count, mean confidence and accuracy of each."""
    width = 0.5 / bins
    members: list[list[tuple[float, bool]]] = [[] for _ in range(bins)]
    for c, hit in zip(confidences, hits):
        members[min(max(int(math.floor((c - 0.5) / width + EPS)), 0), bins - 1)].append((c, hit))
    out = []
    for i, m in enumerate(members):
        out.append(ReliabilityBin(low=0.5 + i * width, high=0.5 + (i + 1) * width, n=len(m),
                                  confidence=sum(c for c, _ in m) / len(m) if m else None,
                                  accuracy=sum(h for _, h in m) / len(m) if m else None))
    return out


def ece(table: Sequence[ReliabilityBin]) -> float | None:
    n = sum(b.n for b in table)
    if n == 0:
        return None
    return sum(b.n / n * abs(b.accuracy - b.confidence) for b in table if b.n)


def expected_calibration_error(confidences: Sequence[float], hits: Sequence[bool], bins: int = 10) -> float | None:
    return ece(reliability(confidences, hits, bins))


def coverage_curve(confidences: Sequence[float], hits: Sequence[bool]) -> list[CoveragePoint]:
    """Accuracy of the labels with confidence >= t, for every distinct confidence t, most confident first."""
    pairs = sorted(zip(confidences, hits), key=lambda x: -x[0])
    points, kept, right, n = [], 0, 0, len(pairs)
    for i, (c, hit) in enumerate(pairs):
        kept, right = kept + 1, right + hit
        if i + 1 == n or pairs[i + 1][0] < c - EPS:
            points.append(CoveragePoint(threshold=c, coverage=kept / n, n=kept, accuracy=right / kept))
    return points


def threshold_for_coverage(curve: Sequence[CoveragePoint], target: float) -> CoveragePoint | None:
    """The highest threshold that keeps at least `target` of the labels (None on an empty curve)."""
    for point in curve:
        if point.coverage >= target - EPS:
            return point
    return curve[-1] if curve else None


def confusion(rows: Sequence[EvalRow]) -> dict[str, dict[str, int]]:
    table = {h: {"A": 0, "B": 0, "undecided": 0} for h in ("A", "B")}
    for r in rows:
        table[r.human][r.label or "undecided"] += 1
    return table


def fold_of(row: EvalRow, folds: int) -> int:
    return int(row.prompt_hash[:8], 16) % folds


def row_score(row: EvalRow) -> float | None:
    return score(row.mode, row.p_a, row.votes_a, row.votes_b)


def fit_rows(rows: Sequence[EvalRow]) -> float:
    """Temperature fitted on the decided rows."""
    usable = [(row_score(r), r.human == "A") for r in rows if r.label is not None and row_score(r) is not None]
    return fit_temperature([s for s, _ in usable], [y for _, y in usable])


def apply_temperature(rows: Sequence[EvalRow], temperature: float) -> list[float]:
    return [calibrated(r, temperature) for r in rows]


def cross_validated(rows: Sequence[EvalRow], folds: int = 5) -> tuple[list[float], list[float]]:
    """Calibrated confidence of each row from a temperature fitted on the other folds (folds by prompt)."""
    temps = [fit_rows([r for r in rows if fold_of(r, folds) != f]) for f in range(folds)]
    return [apply_temperature([r], temps[fold_of(r, folds)])[0] for r in rows], temps


def longer_label(row: EvalRow) -> str | None:
    """The baseline judge "the longer response wins" (None: equal lengths, or lengths unknown)."""
    if row.chars_a is None or row.chars_b is None or row.chars_a == row.chars_b:
        return None
    return "A" if row.chars_a > row.chars_b else "B"


def gain_at(rows: Sequence[EvalRow], share: float = 0.7) -> float | None:
    """Agreement of the `share` most confident labels minus agreement of all (ties in confidence broken by order)."""
    if not rows:
        return None
    ranked = sorted(rows, key=lambda r: -r.confidence)[: max(1, round(share * len(rows)))]
    return sum(map(correct, ranked)) / len(ranked) - sum(map(correct, rows)) / len(rows)


def length_baseline(rows: Sequence[EvalRow]) -> dict:
    """The longer-wins baseline's agreement, and the judge's agreement where the human chose the shorter response."""
    known = [r for r in rows if longer_label(r) is not None]
    shorter = [r for r in known if longer_label(r) != r.human]
    return {"longer_wins": sum(longer_label(r) == r.human for r in rows) / len(rows) if known else None,
            "human_shorter_n": len(shorter) if known else None,
            "human_shorter_accuracy": sum(map(correct, shorter)) / len(shorter) if shorter else None}


def group_metrics(rows: Sequence[EvalRow], calibrated: Sequence[float], bins: int = 10) -> GroupMetrics:
    hits = [correct(r) for r in rows]
    decided = [i for i, r in enumerate(rows) if r.label is not None]
    consistency, _ = position_consistency(rows)
    return GroupMetrics(
        n=len(rows), agreed=sum(hits), accuracy=sum(hits) / len(rows) if rows else 0.0,
        ci95=wilson_interval(sum(hits), len(rows)), undecided=len(rows) - len(decided),
        position_consistency=consistency, a_rate_by_order=a_rate_by_order(rows),
        ece=expected_calibration_error([rows[i].confidence for i in decided], [hits[i] for i in decided], bins),
        ece_calibrated=expected_calibration_error([calibrated[i] for i in decided], [hits[i] for i in decided], bins),
        gain_at_70=gain_at(rows, 0.7), **length_baseline(rows),
    )


def _groups(rows: Sequence[EvalRow], calibrated: Sequence[float], key: Callable[[EvalRow], str | None],
            bins: int) -> dict[str, GroupMetrics]:
    index: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        if key(r) is not None:
            index[key(r)].append(i)
    return {name: group_metrics([rows[i] for i in idx], [calibrated[i] for i in idx], bins)
            for name, idx in sorted(index.items())}


def subcategory_key(row: EvalRow) -> str | None:
    """`source/subcategory`: a subcategory is the source's own finer label, so two sources' are kept apart."""
    if row.subcategory is None:
        return None
    return f"{row.source}/{row.subcategory}" if row.source else row.subcategory


def summarize(rows: Sequence[EvalRow], samples: Sequence[Sample], *, files: list[str], judge_id: str,
              judge_key: str, mode: str, k: int, stored_temperature: float | None = None, bins: int = 10,
              folds: int = 5, coverage_target: float = 0.8) -> EvalMetrics:
    """Every metric of `labeler eval` for one judge on these rows."""
    calibrated, fold_temps = cross_validated(rows, folds)
    overall = group_metrics(rows, calibrated, bins)
    hits = [correct(r) for r in rows]
    decided = [i for i, r in enumerate(rows) if r.label is not None]
    routing = apply_temperature(rows, stored_temperature) if stored_temperature else [r.confidence for r in rows]
    curve = coverage_curve(routing, hits)
    chosen = threshold_for_coverage(curve, coverage_target) or CoveragePoint(threshold=0.0, coverage=0.0, n=0, accuracy=0.0)
    return EvalMetrics(
        **overall.model_dump(), files=files, judge_id=judge_id, judge_key=judge_key, mode=mode, samples=k,
        order_checked=position_consistency(rows)[1], confusion=confusion(rows), maj_at_k=majority_at_k(rows, samples),
        bins=bins, reliability=reliability([rows[i].confidence for i in decided], [hits[i] for i in decided], bins),
        reliability_calibrated=reliability([calibrated[i] for i in decided], [hits[i] for i in decided], bins),
        coverage_curve=curve,
        coverage_curve_margin=coverage_curve([abs(r.margin) for r in rows], hits)
        if rows and all(r.margin is not None for r in rows) else None,
        coverage=CoverageChoice(**chosen.model_dump(), target=coverage_target,
                                confidence="calibrated" if stored_temperature else "raw"),
        calibration=CalibrationSummary(
            folds=folds, fold_temperatures=fold_temps, temperature=fit_rows(rows), stored_temperature=stored_temperature,
            ece_stored=expected_calibration_error([routing[i] for i in decided], [hits[i] for i in decided], bins)
            if stored_temperature else None),
        by_source=_groups(rows, calibrated, lambda r: r.source, bins),
        by_category=_groups(rows, calibrated, lambda r: r.category, bins),
        by_subcategory=_groups(rows, calibrated, subcategory_key, bins),
    )
