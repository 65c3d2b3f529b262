import math

import pytest

from labeler.judge.aggregate import pool_cot, pool_direct, prob_a
from labeler.judge.parse import parse_verdict
from labeler.judge.prompts import render, shorten, to_original
from schemas import Pair, Sample


@pytest.mark.parametrize("text, expected", [
    ("A is wrong, so [[B]]", "B"),
    ("I first thought [[A]] but on reflection [[B]]", "B"),  # only the last marker counts
    ("[[ A ]]", "A"),
    ("Verdict: A", None),  # no marker: the sample abstains
    ("[[C]] [[AB]]", None),
    ("", None),
    (None, None),
])
def test_parse_verdict(text, expected):
    assert parse_verdict(text) == expected


def test_render_swaps_order_and_maps_back():
    pair = Pair(pair_id="1", prompt="Q?", response_a="first answer", response_b="second answer")
    ab, ba = render("cot", pair, "AB"), render("cot", pair, "BA")
    assert ab.user.index("first answer") < ab.user.index("second answer")
    assert ba.user.index("second answer") < ba.user.index("first answer")
    assert "[User request]\nQ?" in ab.user and ab.system.startswith("You are an impartial judge")
    assert render("direct", pair, "AB").assistant_prefix == "Verdict: [["
    assert to_original("A", "BA") == "B" and to_original("B", "AB") == "B" and to_original(None, "BA") is None


def test_shorten_keeps_head_and_tail():
    text = "H" * 100 + "M" * 1000 + "T" * 100
    out = shorten(text, 300)
    assert len(out) <= 300 and out.startswith("H" * 100) and out.endswith("T" * 100) and "truncated" in out
    assert shorten("short", 300) == "short"


def s(position, verdict, idx=0, pa=None, text=""):
    lp = (math.log(pa), math.log(1 - pa)) if pa is not None else (None, None)
    return Sample(pair_id="p", judge_key="k", position=position, sample_idx=idx, text=text, verdict=verdict,
                  logprob_a=lp[0], logprob_b=lp[1])


def test_pool_direct_cancels_a_constant_letter_preference():
    # The judge says "A" in both orders (position bias); in the BA order "A" means original B.
    # AB: P(shown A)=0.9 -> P(orig A)=0.9 ; BA: P(shown A)=0.8 -> P(orig A)=0.2
    pooled = pool_direct([s("AB", "A", pa=0.9), s("BA", "B", pa=0.2)])
    assert pooled.p_a == pytest.approx(0.55)
    assert pooled.label == "A" and pooled.confidence == pytest.approx(0.55)
    assert pooled.order_consistent is False and (pooled.label_ab, pooled.label_ba) == ("A", "B")


def test_pool_cot_majority_vote_and_confidence():
    samples = [s("AB", "A", 0, text="because A"), s("AB", "A", 1), s("AB", None, 2),
               s("BA", "A", 0), s("BA", "B", 1), s("BA", "A", 2)]
    pooled = pool_cot(samples)
    assert (pooled.votes_a, pooled.votes_b, pooled.abstained) == (4, 1, 1)
    assert pooled.label == "A" and pooled.confidence == pytest.approx(0.8)
    assert pooled.order_consistent is True and pooled.rationale == "because A"


def test_pool_cot_tie_is_broken_by_verdict_probabilities():
    pooled = pool_cot([s("AB", "A", 0, pa=0.6), s("BA", "B", 0, pa=0.2)])
    assert pooled.label == "B" and pooled.confidence == 0.5 and pooled.order_consistent is False


def test_pool_cot_all_abstain_is_undecided():
    pooled = pool_cot([s("AB", None, 0, text="hmm"), s("BA", None, 0)])
    assert pooled.label is None and pooled.confidence == 0.0 and pooled.order_consistent is None
    assert pooled.rationale == "hmm"


def test_prob_a():
    assert prob_a(s("AB", "A", pa=0.7)) == pytest.approx(0.7)
    assert prob_a(s("AB", None)) is None
