"""The transformers backend on a tiny random Llama: the real code path (chat template, batching, logits,
sampling, verdict parsing), only with random weights."""

import math

import pytest
import torch

from labeler.judge.backends import SamplingParams, make_backend
from labeler.judge.backends.batching import CPU_ROWS
from labeler.judge.backends.transformers.chains import ChainSampler
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


def test_shared_prefix_of_both_orders_gives_the_same_logprobs(backend):
    """The judge sends (AB, BA) prompts next to each other; their common prefix is prefilled once."""
    texts = [text for _, _, text in Judge(backend, JudgeConfig())._prompts(PAIRS)]
    first, second = (backend.tokenizer.encode(t, add_special_tokens=False) for t in texts[:2])
    assert backend._prefix_groups([first, second]) == [[0, 1]]  # long enough to share
    batched = backend.verdict_logprobs(texts, ("A", "B"))
    single = [backend.verdict_logprobs([t], ("A", "B"))[0] for t in texts]
    for got, want in zip(batched, single):
        assert got == pytest.approx(want, abs=1e-4)


def test_cpu_direct_forwards_take_pairs_up_to_a_token_budget(tiny_llama, monkeypatch):
    """On the CPU a direct forward stops taking pairs once it holds `cpu_rows` tokens; the logprobs are the same
    whatever the batches."""
    wide = make_backend("transformers", model=str(tiny_llama), batch_size=8)
    wide.load()
    texts = [text for _, _, text in Judge(wide, JudgeConfig())._prompts(PAIRS)]
    lengths = [len(wide.tokenizer.encode(a + b, add_special_tokens=False)) for a, b in zip(texts[::2], texts[1::2])]
    assert min(lengths) > wide.cpu_rows / 2  # judge prompts: one pair is a forward's worth
    assert wide._direct_batches(lengths) == [[4], [3], [2], [1], [0]]  # longest first
    monkeypatch.setattr(wide, "cpu_rows", math.inf)
    assert wide._direct_batches(lengths) == [[4, 3, 2, 1], [0]]  # batch_size // 2 pairs, as on a GPU
    monkeypatch.setattr(wide, "cpu_rows", 600)
    assert max(lengths) < 600 <= 2 * sorted(lengths)[-3]
    assert wide._direct_batches(lengths) == [[4, 3], [2, 1], [0]]  # a second pair takes a batch past the budget
    decoder, widths = wide.model.get_decoder(), []
    real_forward = decoder.forward
    monkeypatch.setattr(decoder, "forward", lambda **kw: widths.append(kw["input_ids"].shape[0]) or real_forward(**kw))
    budgeted = wide.verdict_logprobs(texts, ("A", "B"))
    assert widths == [2, 4, 2, 4, 1, 2]  # per batch: the pairs' shared prefixes, then their 2 orders each
    monkeypatch.setattr(wide, "cpu_rows", CPU_ROWS)
    for got, want in zip(budgeted, wide.verdict_logprobs(texts, ("A", "B"))):  # one pair per forward
        assert got == pytest.approx(want, abs=1e-4)


def test_generate_n_samples_in_prompt_order_and_seeded(backend):
    prompts = [backend.render_chat("s", "short", ""), backend.render_chat("s", "a much longer prompt " * 5, "")]
    params = SamplingParams(max_new_tokens=6, temperature=1.0, top_p=0.95, seed=3)
    first = backend.generate(prompts, 3, params, ("A", "B"), "[[")
    again = backend.generate(prompts, 3, params, ("A", "B"), "[[")
    assert [len(x) for x in first] == [3, 3]
    assert [[c.text for c in x] for x in first] == [[c.text for c in x] for x in again]


@torch.no_grad()
def _greedy_reference(model, ids: list[int], steps: int) -> list[int]:
    """No cache, no padding, no batching: the plainest possible decode."""
    out = []
    for _ in range(steps):
        logits = model(torch.tensor([ids + out])).logits[0, -1]
        out.append(int(logits.argmax()))
    return out


def test_shared_prefix_sampler_matches_a_plain_decode(backend):
    """Padding, positions, the repeated KV cache and compaction must not change what a sample sees."""
    prompts = [backend.render_chat("s", "q" * n, "") for n in (1, 25, 9)]
    encoded = [backend.tokenizer.encode(p, add_special_tokens=False) for p in prompts]
    sampler = backend._sampler(("A", "B"), "[[")
    chains = sampler.sample(encoded, 2, max_new_tokens=6, temperature=1e-9, top_p=1.0, seeds=[[0, 1]] * 3,
                            force=False)
    for ids, samples in zip(encoded, chains):
        expected = _greedy_reference(backend.model, ids, 6)
        for chain in samples:
            if chain.verdict is None:  # ran out of tokens (the last one is dropped) or ended with EOS
                assert chain.tokens == expected[: len(chain.tokens)] and len(chain.tokens) <= 5


def test_finished_samples_leave_the_batch_without_disturbing_the_others(backend):
    """Make prompt 0's third greedy token the EOS (no forcing): its samples end at step 3 and are compacted out of
    the KV cache; the other prompts must still decode exactly as alone."""
    prompts = [backend.render_chat("s", "w" * n, "") for n in (4, 17, 30)]
    encoded = [backend.tokenizer.encode(p, add_special_tokens=False) for p in prompts]
    references = [_greedy_reference(backend.model, ids, 8) for ids in encoded]
    stop = references[0][2]
    sampler = ChainSampler(backend.model, backend.tokenizer, backend.choice_ids(("A", "B")), "[[", "[[", {stop})
    chains = sampler.sample(encoded, 2, max_new_tokens=8, temperature=1e-9, top_p=1.0, seeds=[[0, 1]] * 3,
                            force=False)
    assert all(c.tokens == references[0][:2] and c.verdict is None for c in chains[0])
    for reference, samples in zip(references[1:], chains[1:]):
        for chain in samples:
            cut = reference.index(stop) if stop in reference[:7] else 7
            assert chain.tokens == reference[:cut]


class Scripted(torch.nn.Module):
    """The tiny Llama (its real cache and positions) with its logits replaced: each sample writes `script`
    greedily, then the EOS. The two verdict letters keep some probability, so their log-probs are finite."""

    def __init__(self, model, prompt_len: int, script: list[int], eos: int, letters: list[int]):
        super().__init__()
        self.inner, self.config, self.device = model, model.config, model.device
        self.prompt_len, self.script, self.eos, self.letters = prompt_len, script, eos, letters

    def forward(self, position_ids, **kwargs):
        out = self.inner(position_ids=position_ids, **kwargs)
        step = int(position_ids[0, -1]) + 1 - self.prompt_len
        logits = torch.full_like(out.logits[:, -1:], -30.0)
        logits[..., self.letters] = -2.0
        logits[..., self.script[step] if step < len(self.script) else self.eos] = 10.0
        out.logits = logits
        return out


@pytest.mark.parametrize("text, max_new_tokens, verdict, forced", [
    ("It quotes [[A]] from the request.\n[[B]]", 40, "B", False),  # the quoted marker neither stops nor decides
    ("[[A]] so far, then more words", 40, "A", False),  # the last marker counts, whatever follows it
    ("Response A is right. [[A", 12, "A", False),  # ran out of tokens right after the letter: closed
    ("I pick [[A is better", 40, None, True),  # "[[A" not closed by "]]" is no marker: forced
    ("B misses the point.\n[[A]]\nAnd then it rambles on", 40, "A", False),  # a marker ending its line ends it
])
def test_one_verdict_rule_the_last_complete_marker_counts(backend, text, max_new_tokens, verdict, forced):
    from labeler.judge.parse import parse_verdict

    tokenizer = backend.tokenizer
    ids = tokenizer.encode(backend.render_chat("s", "judge", ""), add_special_tokens=False)
    script = tokenizer.encode(text, add_special_tokens=False)
    letters = backend.choice_ids(("A", "B"))
    model = Scripted(backend.model, len(ids), script, tokenizer.eos_token_id, letters)
    sampler = ChainSampler(model, tokenizer, letters, "[[", "\nVerdict: [[", {tokenizer.eos_token_id})
    sampler.shared_prefix = False  # the generic decode path: the wrapper is not a Llama to cascade attention
    (chain,), = sampler.sample([ids], 1, max_new_tokens=max_new_tokens, temperature=1e-9, top_p=1.0, seeds=[[0]])
    completion = backend._completion(chain)
    assert completion.forced is forced
    if verdict is not None:
        assert "ABCD"[chain.verdict] == verdict == parse_verdict(completion.text)
        assert completion.text.startswith(text.split("[[")[0])
        assert "rambles" not in completion.text  # the sample stopped at the end of its verdict line
        expected = (0.0, -12.0) if verdict == "A" else (-12.0, 0.0)  # read at the letter, not at the EOS
        assert chain.logprobs == pytest.approx(expected, abs=0.01)
    else:
        assert parse_verdict(completion.text) == "ABCD"[chain.verdict]


def test_forced_verdict_equals_a_fresh_forward_pass(backend):
    prompt = backend.render_chat("s", "judge this", "")
    ids = backend.tokenizer.encode(prompt, add_special_tokens=False)
    sampler = backend._sampler(("A", "B"), "[[")
    (chain,), = sampler.sample([ids], 1, max_new_tokens=4, temperature=1.0, top_p=1.0, seeds=[[5]], force=True)
    assert chain.forced and chain.verdict in (0, 1)
    kept = chain.tokens[: -(len(sampler.force_ids) + 1)]
    with torch.no_grad():
        full = backend.model(torch.tensor([ids + kept + sampler.force_ids])).logits[0, -1]
    logprobs = torch.log_softmax(full, dim=-1)[backend.choice_ids(("A", "B"))]
    assert chain.logprobs == pytest.approx((float(logprobs[0]), float(logprobs[1])), abs=1e-4)
    assert chain.tokens[-1] == backend.choice_ids(("A", "B"))[chain.verdict]


def test_generate_without_forcing_can_abstain_and_with_forcing_never_does(backend):
    prompts = [backend.render_chat("s", "x" * n, "") for n in (3, 8)]
    free = backend.generate(prompts, 3, SamplingParams(max_new_tokens=5, seed=1, force_verdict=False), ("A", "B"), "[[")
    forced = backend.generate(prompts, 3, SamplingParams(max_new_tokens=5, seed=1), ("A", "B"), "[[")
    assert all(c.verdict_logprobs is None and not c.forced for x in free for c in x if "[[" not in c.text)
    assert all(c.verdict_logprobs is not None and c.text.endswith("]]") for x in forced for c in x)


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



def test_a_sample_is_the_same_text_whatever_its_batch_or_round(backend):
    """Per-sample seeds: a pair judged alone, in a batch, or adaptively in rounds draws the same samples."""
    fixed = Judge(backend, JudgeConfig(mode="cot", samples=4, max_new_tokens=6))
    key = lambda s: (s.pair_id, s.position, s.sample_idx)  # noqa: E731
    _, together = fixed.judge(PAIRS[:3], "r1")
    _, alone = fixed.judge([PAIRS[1]], "r2")
    by_key = {key(s): s.text for s in together}
    assert {key(s): s.text for s in alone} == {k: v for k, v in by_key.items() if k[0] == PAIRS[1].pair_id}
    adaptive = Judge(backend, JudgeConfig(mode="cot", samples=4, max_new_tokens=6, adaptive=True, adaptive_round=1))
    _, rounds = adaptive.judge(PAIRS[:3], "r3")
    assert rounds and all(by_key[key(s)] == s.text for s in rounds)
    other_seed = Judge(backend, JudgeConfig(mode="cot", samples=4, max_new_tokens=6, seed=1))
    assert [s.text for s in other_seed.judge(PAIRS[:3], "r4")[1]] != [s.text for s in together]


def test_adaptive_pairs_in_flight_sample_as_one_batch_and_leave_no_prefill_behind(backend):
    """Continuous batching on the real sampler: pairs fed two at a time into rounds that mix first and later
    rounds (per-prompt kept prefills) draw the samples of one adaptive batch; a pair that stops early has its
    kept prefills forgotten, and a pair's last round drops them, so nothing is left in the store."""
    config = JudgeConfig(mode="cot", samples=4, max_new_tokens=6, adaptive=True, adaptive_round=1)
    key = lambda s: (s.pair_id, s.position, s.sample_idx, s.text, s.verdict)  # noqa: E731
    _, whole = Judge(backend, config).judge(PAIRS, "whole")
    prefills = backend._sampler(("A", "B"), "[[").prefills
    hits, queue = prefills.hits, list(PAIRS)

    def take(n):
        got, queue[:] = queue[:min(n, 1)], queue[min(n, 1):]  # one new pair per round at most: rounds mix
        return got

    streamed = [s for _, samples in Judge(backend, config).stream(take, 2, "streamed") for s in samples]
    assert sorted(map(key, streamed)) == sorted(map(key, whole))
    assert {s.pair_id for s in streamed} == {p.pair_id for p in PAIRS}
    rounds = {s.pair_id: s.sample_idx + 1 for s in sorted(streamed, key=lambda s: s.sample_idx)}
    assert 1 < max(rounds.values())  # some pair went on to a later round, on its kept prefill
    assert prefills.hits > hits and not prefills._items


@pytest.mark.parametrize("shared_prefix", [True, False])  # cascade attention, or the model's own on a repeated cache
def test_samples_that_end_early_are_forced_on_the_way_out_without_disturbing_the_rest(backend, shared_prefix):
    """Prompt 0's third greedy token is made the EOS: its samples end at step 3, are forced mid-decode and
    leave the batch; every forced read must equal a fresh forward pass, and the others decode as alone."""
    prompts = [backend.render_chat("s", "w" * n, "") for n in (4, 17, 30)]
    encoded = [backend.tokenizer.encode(p, add_special_tokens=False) for p in prompts]
    references = [_greedy_reference(backend.model, ids, 8) for ids in encoded]
    eos = references[0][2]
    sampler = ChainSampler(backend.model, backend.tokenizer, backend.choice_ids(("A", "B")), "[[",
                           "\nVerdict: [[", {eos})
    assert sampler.shared_prefix  # the tiny Llama is plain full attention
    sampler.shared_prefix = shared_prefix
    chains = sampler.sample(encoded, 2, max_new_tokens=8, temperature=1e-9, top_p=1.0, seeds=[[0, 1]] * 3, force=True)
    ab = backend.choice_ids(("A", "B"))
    for ids, reference, samples in zip(encoded, references, chains):
        for chain in samples:
            kept = chain.tokens[: -(len(sampler.force_ids) + 1)]
            assert chain.forced and kept == reference[: len(kept)]
            with torch.no_grad():
                fresh = torch.log_softmax(backend.model(torch.tensor([ids + kept + sampler.force_ids])).logits[0, -1], -1)
            assert chain.logprobs == pytest.approx((float(fresh[ab[0]]), float(fresh[ab[1]])), abs=1e-4)
    assert all(len(c.tokens) == 2 + len(sampler.force_ids) + 1 for c in chains[0])


def test_bfloat16_weights_read_float32_verdict_logits_under_their_own_judge_key(backend, tiny_llama):
    from labeler.errors import LabelerError

    bf16 = make_backend("transformers", model=str(tiny_llama), batch_size=2, dtype="bfloat16")
    plain, fast = Judge(backend, JudgeConfig()), Judge(bf16, JudgeConfig())
    assert fast.judge_id == plain.judge_id and fast.judge_key != plain.judge_key
    prompts = [backend.render_chat("s", "q" * n, "Verdict: [[") for n in (1, 30, 7)]
    ours, theirs = backend.verdict_logprobs(prompts, ("A", "B")), bf16.verdict_logprobs(prompts, ("A", "B"))
    assert bf16.model.dtype == torch.bfloat16 and bf16._head.dtype == torch.float32
    for (a1, b1), (a2, b2) in zip(ours, theirs):
        assert abs(a1 - a2) < 0.05 and abs(b1 - b2) < 0.05
    for refused in ("fp8", "int8"):  # int8 changed labels too often to be offered (README)
        with pytest.raises(LabelerError, match="dtype must be one of float32, bfloat16"):
            make_backend("transformers", model=str(tiny_llama), dtype=refused)


def test_annotate_dtype_option_reaches_the_judge_key(tiny_llama, tmp_path):
    import duckdb

    from helpers import run, write_pairs

    db, data = tmp_path / "l.duckdb", write_pairs(tmp_path / "d.jsonl", 2)
    run("annotate", data, "--db", db, "--model", tiny_llama, "-q", ok=True)
    run("annotate", "--db", db, "--model", tiny_llama, "--dtype", "bfloat16", "-q", ok=True)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(DISTINCT judge_key), count(DISTINCT judge_id) FROM judgments").fetchone() == (2, 1)
    bad = run("annotate", "--db", db, "--model", tiny_llama, "--dtype", "fp8")
    assert bad.exit_code == 2 and "Invalid value for '--dtype'" in bad.output and "'fp8' is not one of" in bad.output


@pytest.mark.parametrize("shared_prefix", [True, False])
def test_kept_prefills_are_not_computed_again_and_sample_as_a_fresh_prefill(backend, shared_prefix):
    """Adaptive rounds: a later call on prompts seen before prefills only the new ones (the model sees no token
    of a kept prompt again) and draws the same samples as a sampler that prefills everything."""
    prompts = [backend.tokenizer.encode(backend.render_chat("s", "w" * n, ""), add_special_tokens=False)
               for n in (4, 17, 30, 9)]
    letters = backend.choice_ids(("A", "B"))

    def sampler():
        s = ChainSampler(backend.model, backend.tokenizer, letters, "[[", "\nVerdict: [[", {0})
        s.shared_prefix = shared_prefix
        return s

    def texts(s, rows, keep):
        chains = s.sample([prompts[i] for i in rows], 2, max_new_tokens=5, temperature=1.0, top_p=0.95,
                          seeds=[[10 * i, 10 * i + 1] for i in rows], keep_prompts=keep)
        return [[c.tokens for c in cs] for cs in chains]

    kept, fresh = sampler(), sampler()
    assert texts(kept, [0, 1, 2], True) == texts(fresh, [0, 1, 2], False)
    widths = []
    hook = backend.model.register_forward_pre_hook(
        lambda module, args, kwargs: widths.append(kwargs["input_ids"].shape[1]), with_kwargs=True)
    try:
        second = texts(kept, [2, 3, 0], True)
    finally:
        hook.remove()
    assert kept.prefills.hits == 2 and kept.prefills.misses == 4
    assert widths[0] == len(prompts[3]) and max(widths[1:]) <= len(kept.force_ids)  # prefill of prompt 3 alone
    assert second == texts(fresh, [2, 3, 0], False)
    last = texts(kept, [1, 3], False)  # the prompts' last round: kept prefills are used, then dropped
    assert kept.prefills.hits == 4 and not {tuple(prompts[1]), tuple(prompts[3])} & kept.prefills._items.keys()
    assert last == texts(fresh, [1, 3], False) and tuple(prompts[0]) in kept.prefills._items


def test_prefills_beyond_the_budget_are_dropped_oldest_first(backend, monkeypatch):
    from labeler.judge.backends.transformers.chains import left_pad, positions_from_mask
    from labeler.judge.backends.transformers.prefills import PrefillStore

    prompts = [backend.tokenizer.encode(backend.render_chat("s", "w" * n, ""), add_special_tokens=False)
               for n in (4, 17, 30)]

    def run(store, rows):
        ids, mask = left_pad([prompts[i] for i in rows], backend.tokenizer.pad_token_id)
        return store.prefill(backend.model, [prompts[i] for i in rows], ids, mask, positions_from_mask(mask))

    monkeypatch.setenv("LABELER_PREFILL_CACHE_MB", "3")
    assert PrefillStore().budget == 3 * 2**20
    unbounded = PrefillStore(budget_mb=1e6)
    run(unbounded, [0, 1, 2])
    sizes = [unbounded._items[tuple(p)].bytes for p in prompts]
    nothing = PrefillStore(budget_mb=0)
    run(nothing, [0, 1])
    assert not nothing._items and nothing.misses == 2
    two = PrefillStore(budget_mb=(sizes[1] + sizes[2]) / 2**20)
    for i in range(3):
        run(two, [i])
    assert list(two._items) == [tuple(prompts[1]), tuple(prompts[2])]  # prompt 0, the oldest, went first
    cache, logits = run(two, [2, 1])
    assert two.hits == 2 and logits.shape[0] == 2 and cache.layers[0].keys.shape[2] == len(prompts[2])


def test_prefills_run_in_length_groups_and_equal_one_padded_forward(backend):
    """On the CPU a call's prompts are prefilled four at a time, shortest first, each group cut to its own longest
    (a round's 16 judge prompts padded to the longest were a third padding); the kept keys, values and last logits
    are those of one padded forward."""
    from labeler.judge.backends.transformers.chains import left_pad, positions_from_mask
    from labeler.judge.backends.transformers.prefills import CPU_GROUP, PrefillStore

    prompts = [backend.tokenizer.encode(backend.render_chat("s", "w" * n, ""), add_special_tokens=False)
               for n in (30, 4, 17, 2, 25, 9)]
    ids, mask = left_pad(prompts, backend.tokenizer.pad_token_id)
    positions = positions_from_mask(mask)
    widths = []
    hook = backend.model.register_forward_pre_hook(
        lambda module, args, kwargs: widths.append(kwargs["input_ids"].shape[1]), with_kwargs=True)
    try:
        cache, logits = PrefillStore().prefill(backend.model, prompts, ids, mask, positions, keep=False)
    finally:
        hook.remove()
    lengths = sorted(map(len, prompts))
    assert CPU_GROUP == 4 and widths == [lengths[3], lengths[5]]
    with torch.no_grad():
        whole = backend.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
    assert torch.allclose(logits, whole.logits[:, -1], atol=1e-4)
    for layer, reference in zip(cache.layers, whole.past_key_values.layers):
        for row, prompt in enumerate(prompts):
            n = len(prompt)
            assert torch.allclose(layer.keys[row, :, -n:], reference.keys[row, :, -n:], atol=1e-4)
            assert torch.allclose(layer.values[row, :, -n:], reference.values[row, :, -n:], atol=1e-4)
