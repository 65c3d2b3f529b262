"""The transformers backend on a tiny random Llama: the real code path (chat template, batching, logits,
sampling, verdict parsing), only with random weights."""

import math

import pytest

from labeler.judge.backends import SamplingParams, make_backend
from labeler.judge.judge import Judge, JudgeConfig
from labeler.store import Store
from schemas import Pair

PAIRS = [Pair(pair_id=f"p{i}", prompt="Say hi " * (i + 1), response_a="hi", response_b="hello there " * i)
         for i in range(5)]


@pytest.fixture(scope="module")
def backend(tiny_llama):
    b = make_backend("transformers", model=str(tiny_llama), batch_size=2)
    b.load()
    return b


def test_model_id_has_fingerprint(backend, tiny_llama):
    name, _, fingerprint = backend.model_id.partition("@")
    assert name == tiny_llama.name and len(fingerprint) == 12


def test_render_chat_uses_the_chat_template(backend):
    text = backend.render_chat("SYS", "USER", "Verdict: [[")
    assert text.startswith("<|im_start|>system\nSYS<|im_end|>") and text.endswith("<|im_start|>assistant\nVerdict: [[")


def test_verdict_logprobs_batched_equals_one_by_one(backend):
    prompts = [backend.render_chat("s", "q" * n, "Verdict: [[") for n in (1, 30, 7, 12, 3)]
    batched = backend.verdict_logprobs(prompts, ("A", "B"))
    single = [backend.verdict_logprobs([p], ("A", "B"))[0] for p in prompts]
    for (a1, b1), (a2, b2) in zip(batched, single):
        assert a1 == pytest.approx(a2, abs=1e-4) and b1 == pytest.approx(b2, abs=1e-4)
    assert all(a < 0 and b < 0 and math.exp(a) + math.exp(b) < 1 for a, b in batched)


def test_generate_n_samples_in_prompt_order_and_seeded(backend):
    prompts = [backend.render_chat("s", "short", ""), backend.render_chat("s", "a much longer prompt " * 5, "")]
    params = SamplingParams(max_new_tokens=6, temperature=1.0, top_p=0.95, seed=3)
    first = backend.generate(prompts, 3, params, ("A", "B"), "[[")
    again = backend.generate(prompts, 3, params, ("A", "B"), "[[")
    assert [len(x) for x in first] == [3, 3]
    assert [[c.text for c in x] for x in first] == [[c.text for c in x] for x in again]


def test_verdict_position_reads_the_letter_after_the_marker(backend):
    tok = backend.tokenizer
    ids = tok.encode("I think so. [[B]]", add_special_tokens=False)
    at = backend._verdict_position(ids, backend.choice_ids(("A", "B")), "[[")
    assert at is not None and tok.decode([ids[at]]) == "B"
    assert backend._verdict_position(tok.encode("no marker B", add_special_tokens=False),
                                     backend.choice_ids(("A", "B")), "[[") is None


def test_judge_direct_and_cot_store_round_trip(backend, tmp_path):
    direct = Judge(backend, JudgeConfig(mode="direct"))
    judgments, samples = direct.judge(PAIRS, "run1")
    assert len(judgments) == 5 and len(samples) == 10
    for j in judgments:
        assert j.label in ("A", "B") and 0.5 <= j.confidence <= 1.0 and j.judge_id == backend.model_id
    cot = Judge(backend, JudgeConfig(mode="cot", samples=2, max_new_tokens=8))
    assert cot.judge_key != direct.judge_key
    cj, cs = cot.judge(PAIRS[:2], "run2")
    assert len(cs) == 2 * 2 * 2 and all(s.text is not None for s in cs)
    with Store(tmp_path / "x.duckdb") as store:
        store.start_run("run2", "annotate", 2)
        store.save_batch("run2", cj, cs)
        assert store.count("samples") == 8 and store.count("judgments") == 2

