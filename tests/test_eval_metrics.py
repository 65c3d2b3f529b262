"""Eval metrics and calibration against hand-computed values on small fixtures."""

import math

import pytest

from labeler.evaluation import metrics as em
from labeler.evaluation.calibration import calibrated_confidence, fit_temperature, score
from schemas import EvalRow, Sample


def row(pair_id="p", human="A", label="A", confidence=0.8, p_a=0.8, votes=(1, 1), order=(None, None),
        consistent=None, mode="direct", samples=1, prompt_hash="0" * 32, source=None):
    return EvalRow(pair_id=pair_id, human=human, label=label, confidence=confidence, p_a=p_a, votes_a=votes[0],
                   votes_b=votes[1], abstained=0, order_consistent=consistent, label_ab=order[0], label_ba=order[1],
                   mode=mode, samples=samples, source=source, category=None, subcategory=None, prompt_hash=prompt_hash)


def test_wilson_interval_known_values():
    lo, hi = em.wilson_interval(8, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)  # the textbook 8/10 example
    lo, hi = em.wilson_interval(0, 5)
    assert lo == 0.0 and hi == pytest.approx(3.8415 / (5 + 3.8415), abs=1e-4)  # z^2 / (n + z^2) at k = 0
    assert em.wilson_interval(0, 0) == (0.0, 1.0)


def test_accuracy_counts_undecided_as_wrong_and_confusion():
    rows = [row(human="A", label="A"), row(human="A", label="B"), row(human="B", label="B"),
            row(human="B", label=None, confidence=0.0)]
    g = em.group_metrics(rows, [r.confidence for r in rows], bins=5)
    assert (g.n, g.agreed, g.accuracy, g.undecided) == (4, 2, 0.5, 1)
    assert g.ci95 == em.wilson_interval(2, 4)
    assert em.confusion(rows) == {"A": {"A": 1, "B": 1, "undecided": 0}, "B": {"A": 0, "B": 1, "undecided": 1}}


def test_position_bias_counts_the_letter_as_shown():
    # label_ba is stored in original letters: "B" in the BA order means the judge picked what it saw first
    rows = [row(order=("A", "B"), consistent=False), row(order=("A", "A"), consistent=True),
            row(order=("B", "B"), consistent=True), row(order=("A", None))]
    assert em.a_rate_by_order(rows) == {"AB": 3 / 4, "BA": 2 / 3}
    assert em.position_consistency(rows) == (2 / 3, 3)


def test_ece_equal_width_bins_hand_computed():
    conf = [0.55, 0.6, 0.65, 0.95, 1.0]
    hits = [True, False, False, True, False]
    bins = em.reliability(conf, hits, bins=5)  # width 0.1 over [0.5, 1]; 0.6 sits on an edge: upper bin
    assert [b.n for b in bins] == [1, 2, 0, 0, 2]
    assert bins[1].confidence == pytest.approx(0.625) and bins[1].accuracy == 0.0
    assert bins[4].confidence == pytest.approx(0.975) and bins[4].accuracy == 0.5
    # (1 * |1 - 0.55| + 2 * |0 - 0.625| + 2 * |0.5 - 0.975|) / 5
    assert em.expected_calibration_error(conf, hits, bins=5) == pytest.approx(2.65 / 5)
    assert em.expected_calibration_error([], [], bins=5) is None


def test_coverage_curve_groups_ties_and_picks_threshold():
    conf = [0.9, 0.8, 0.8, 0.6, 0.0]  # the last is undecided (confidence 0)
    hits = [True, True, False, True, False]
    curve = em.coverage_curve(conf, hits)
    assert [(p.threshold, p.n, p.coverage) for p in curve] == [(0.9, 1, 0.2), (0.8, 3, 0.6), (0.6, 4, 0.8), (0.0, 5, 1.0)]
    assert [p.accuracy for p in curve] == pytest.approx([1.0, 2 / 3, 3 / 4, 3 / 5])
    assert em.threshold_for_coverage(curve, 0.5).threshold == 0.8
    assert em.threshold_for_coverage(curve, 0.8).threshold == 0.6
    assert em.threshold_for_coverage(curve, 0.81).threshold == 0.0


def sample(pair_id, position, idx, verdict, p_a=None):
    la, lb = (math.log(p_a), math.log(1 - p_a)) if p_a is not None else (None, None)
    return Sample(pair_id=pair_id, judge_key="k", position=position, sample_idx=idx, text="", verdict=verdict,
                  logprob_a=la, logprob_b=lb)


MAJ_SAMPLES = [
    # p1, human A: k=1 A,A -> A; k=2 A,B,A,- -> A; k=3 A,B,B,A,-,B -> B
    sample("p1", "AB", 0, "A"), sample("p1", "AB", 1, "B"), sample("p1", "AB", 2, "B"),
    sample("p1", "BA", 0, "A"), sample("p1", "BA", 1, None), sample("p1", "BA", 2, "B"),
    # p2, human B: k=1 B,A tie -> mean P(A) (0.2 + 0.6) / 2 = 0.4 -> B; k=2 B,A,A,A -> A; k=3 3-3 tie -> 0.4 -> B
    sample("p2", "AB", 0, "B", 0.2), sample("p2", "AB", 1, "A"), sample("p2", "AB", 2, "B"),
    sample("p2", "BA", 0, "A", 0.6), sample("p2", "BA", 1, "A"), sample("p2", "BA", 2, "B"),
    # p3, human A: a 1-1 tie with no verdict-token probabilities is undecided at every k
    sample("p3", "AB", 0, "A"), sample("p3", "BA", 0, "B"), sample("p3", "AB", 1, None), sample("p3", "BA", 1, None),
    sample("p3", "AB", 2, None), sample("p3", "BA", 2, None),
]


def test_majority_at_k_from_samples_hand_computed():
    rows = [row(pair_id="p1", human="A", mode="cot", samples=3), row(pair_id="p2", human="B", mode="cot", samples=3),
            row(pair_id="p3", human="A", mode="cot", samples=3)]
    points = em.majority_at_k(rows, MAJ_SAMPLES)
    assert [(p.k, p.votes, p.undecided) for p in points] == [(1, 2, 1), (2, 4, 1), (3, 6, 1)]
    assert [p.accuracy for p in points] == pytest.approx([2 / 3, 1 / 3, 1 / 3])


def test_score_and_calibrated_confidence():
    assert score("direct", 0.8, 2, 0) == pytest.approx(math.log(4))
    assert score("cot", None, 3, 1) == pytest.approx(math.log(3.5 / 1.5))
    assert score("cot", 1.0, 4, 0) == pytest.approx(math.log(9))  # unanimous stays finite
    assert score("direct", None, 0, 0) is None
    assert calibrated_confidence(math.log(4), 1.0, raw=0.8) == pytest.approx(0.8)
    assert calibrated_confidence(-math.log(4), 2.0, raw=0.8) == pytest.approx(2 / 3)  # sigmoid(ln 4 / 2) = 2 / (2 + 1)
    assert calibrated_confidence(1.0, 2.0, raw=0.0, decided=False) == 0.0


def test_fit_temperature_closed_form():
    # scores +-2, three of four humans follow the sign: MLE sigmoid(2 / T) = 3/4, so T = 2 / ln 3
    scores = [2, 2, 2, 2, -2, -2, -2, -2]
    human_is_a = [True, True, True, False, False, False, False, True]
    assert fit_temperature(scores, human_is_a) == pytest.approx(2 / math.log(3), rel=1e-6)
    assert fit_temperature([], []) == 1.0
    assert fit_temperature([1, -1], [False, True]) == 1000.0  # worse than chance: flatten everything to 0.5


def test_cross_validation_never_fits_on_the_reported_fold():
    rows = [row(pair_id=f"p{i}", prompt_hash=f"{i:08x}" + "0" * 24, p_a=0.9 if i % 2 else 0.1,
                label="A" if i % 2 else "B", human="A" if i % 4 < 3 else "B") for i in range(40)]
    calibrated, temps = em.cross_validated(rows, folds=4)
    assert len(temps) == 4
    for r, c in zip(rows, calibrated):
        own = temps[em.fold_of(r, 4)]
        assert c == pytest.approx(calibrated_confidence(em.row_score(r), own, r.confidence))


def test_summarize_keys_and_maj_at_k_equals_accuracy():
    rows = [row(pair_id=p, human=h, label=l, mode="cot", samples=3, votes=v, p_a=v[0] / sum(v),
                confidence=max(v) / sum(v), source="s") for p, h, l, v in
            (("p1", "A", "B", (2, 3)), ("p2", "B", "B", (3, 3)), ("p3", "A", None, (1, 1)))]
    m = em.summarize(rows, MAJ_SAMPLES, files=["f"], judge_id="j", judge_key="k", mode="cot", k=3, bins=5, folds=2)
    assert m.n == 3 and m.maj_at_k[-1].accuracy == m.accuracy == 1 / 3
    assert set(m.by_source) == {"s"} and m.by_source["s"].n == 3
    dumped = m.model_dump()
    for key in ("n", "accuracy", "ci95", "position_consistency", "a_rate_by_order", "ece", "ece_calibrated", "by_source"):
        assert key in dumped


def test_plots_draw_an_interval_whose_bound_is_a_rounding_error_past_its_estimate(tmp_path):
    """200 PandaLM pairs: a group at 100 % whose Wilson upper bound came out 1e-16 below it crashed groups_plot
    (matplotlib: 'xerr' must not contain negative values) and no metrics were written."""
    from labeler.evaluation.plots import groups_plot, majority_plot

    rows = [row(pair_id=p, human=h, label=l, mode="cot", samples=3, votes=v, p_a=v[0] / sum(v),
                confidence=max(v) / sum(v), source="s") for p, h, l, v in
            (("p1", "A", "B", (2, 3)), ("p2", "B", "B", (3, 3)), ("p3", "A", None, (1, 1)))]
    m = em.summarize(rows, MAJ_SAMPLES, files=["f"], judge_id="j", judge_key="k", mode="cot", k=3, bins=5, folds=2)
    group = m.by_source["s"]
    past = group.model_copy(update={"accuracy": 1.0, "ci95": (0.9, 1.0 - 1e-16)})
    m = m.model_copy(update={"by_source": {"s": past},
                             "maj_at_k": [p.model_copy(update={"ci95": (p.accuracy + 1e-16, 1.0)}) for p in m.maj_at_k]})
    assert groups_plot(m, tmp_path / "g.png").stat().st_size > 0
    assert majority_plot(m, tmp_path / "m.png").stat().st_size > 0
