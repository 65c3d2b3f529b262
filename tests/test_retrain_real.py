"""STaR data building on the real default model (SmolLM2-135M-Instruct) for a few pairs."""

import pytest

from labeler.judge.backends import make_backend
from labeler.judge.judge import Judge
from labeler.judge.parse import parse_verdict
from labeler.judge.prompts import render
from schemas import GoldPair, Pair
from trainer import star as star_data
from trainer.config import StarConfig

pytestmark = pytest.mark.real_model

GOLD = [
    GoldPair(pair=Pair(pair_id="capital", prompt="What is the capital of France?",
                       response_a="The capital of France is Paris.", response_b="The capital of France is Berlin."),
             label="A", prompt_hash="h1"),
    GoldPair(pair=Pair(pair_id="legs", prompt="How many legs does a spider have?",
                       response_a="A spider has six legs.", response_b="A spider has eight legs."),
             label="B", prompt_hash="h2", notes=["Spiders are arachnids with eight legs; A is wrong."]),
]


def test_star_rows_on_the_default_model():
    from labeler.judge.backends.models import default_model_dir

    star = StarConfig(samples=2, max_new_tokens=40, rationalize_samples=1)
    judge = Judge(make_backend("transformers", model=str(default_model_dir()), batch_size=4),
                  star_data.cot_config(star))
    _, samples = judge.judge([g.pair for g in GOLD], "test")
    assert len(samples) == len(GOLD) * 2 * star.samples
    by_pair = {g.pair.pair_id: [s for s in samples if s.pair_id == g.pair.pair_id] for g in GOLD}
    dpo_rows, stats = star_data.star_rows(judge, GOLD, by_pair, star, "star-dpo", 1, 4)
    sft_rows, _ = star_data.star_rows(judge, GOLD, by_pair, star, "star-sft", 1, 4)
    assert stats.correct_chains + stats.wrong_chains == len(samples) and stats.notes_used == 1
    assert sft_rows  # the reviewer's note alone gives one
    for row in dpo_rows + sft_rows:
        gold = next(g for g in GOLD if g.pair.pair_id == row.pair_id)
        wanted = star_data.seen(gold.label, row.position)
        r = render("cot", gold.pair, row.position)
        assert row.prompt == judge.backend.render_chat(r.system, r.user, r.assistant_prefix)
        assert row.prompt.endswith("<|im_start|>assistant\n") and "already decided" not in row.prompt
        assert parse_verdict(row.chosen) == wanted
        if row.kind == "dpo":
            assert parse_verdict(row.rejected) != wanted
    note_rows = [r for r in sft_rows if r.origin == "note"]
    assert [(r.pair_id, r.position) for r in note_rows] == [("legs", "AB")]
    assert note_rows[0].chosen.endswith("[[B]]")
