"""Judge orchestration on the fake backend: judge keys, both orders, adaptive voting, forcing."""

import pytest

from labeler.judge.adaptive import orders_repeat, prob_share_above_half, settled
from labeler.judge.backends import Completion
from labeler.judge.backends.fake import FakeBackend
from labeler.judge.judge import Judge, JudgeConfig
from schemas import Pair

PAIRS = [Pair(pair_id=f"p{i}", prompt=f"question {i}", response_a=f"a{i}", response_b=f"b{i}") for i in range(30)]


def test_beta_posterior_tail_matches_hand_values():
    assert prob_share_above_half(0, 0) == 0.5
    assert prob_share_above_half(1, 0) == 0.75  # Beta(2, 1): 1 - 0.5**2
    assert prob_share_above_half(4, 0) == 31 / 32
    assert prob_share_above_half(0, 4) == 1 / 32
    assert settled(4, 0, 12, 0.95) and settled(0, 4, 12, 0.95)
    assert not settled(3, 1, 12, 0.95)
    assert settled(7, 5, 1, 0.99)  # the leader cannot be overtaken by one vote


def test_judge_key_tracks_every_setting():
    backend = FakeBackend()
    keys = {Judge(backend, cfg).judge_key for cfg in [
        JudgeConfig(), JudgeConfig(seed=1), JudgeConfig(mode="cot", samples=4),
        JudgeConfig(mode="cot", samples=4, adaptive=True), JudgeConfig(mode="cot", samples=4, top_p=0.9)]}
    assert len(keys) == 5
    assert Judge(backend, JudgeConfig()).judge_key == Judge(FakeBackend(), JudgeConfig()).judge_key


@pytest.mark.parametrize("bad", [dict(mode="x"), dict(samples=0), dict(mode="direct", samples=3),
                                 dict(mode="direct", adaptive=True), dict(mode="cot", samples=4, top_p=0),
                                 dict(mode="cot", samples=4, adaptive=True, adaptive_confidence=0.4)])
def test_config_rejects_bad_combinations(bad):
    with pytest.raises(ValueError):
        JudgeConfig(**bad)


def test_adaptive_uses_fewer_samples_and_records_them():
    fixed = Judge(FakeBackend(abstain_rate=0.0), JudgeConfig(mode="cot", samples=8))
    adaptive = Judge(FakeBackend(abstain_rate=0.0), JudgeConfig(mode="cot", samples=8, adaptive=True))
    fj, fs = fixed.judge(PAIRS, "r1")
    aj, a_s = adaptive.judge(PAIRS, "r2")
    assert len(fs) == 30 * 16
    assert len(a_s) < len(fs)
    for j in aj:
        mine = [s for s in a_s if s.pair_id == j.pair_id]
        assert len(mine) % 4 == 0 and 4 <= len(mine) <= 16  # whole rounds of 2 per order
        assert j.votes_a + j.votes_b + j.abstained == len(mine)
        if len(mine) < 16:
            used = len(mine) // 2
            latest = {pos: [s.verdict for s in mine if s.position == pos and s.sample_idx >= used - 2]
                      for pos in ("AB", "BA")}
            assert settled(j.votes_a, j.votes_b, 16 - len(mine), 0.95) or orders_repeat(latest)


def test_orders_repeat_needs_every_order_unanimous():
    assert orders_repeat({"AB": ["A", "A"], "BA": ["B", "B"]})
    assert not orders_repeat({"AB": ["A", "A"], "BA": ["B", "A"]})
    assert not orders_repeat({"AB": ["A", "A"], "BA": [None, None]})
    assert not orders_repeat({})
    assert not orders_repeat({"AB": ["A"], "BA": ["B"]})  # one sample per order repeats nothing yet


class FirstShown(FakeBackend):
    """A judge that always names the letter shown first, as SmolLM2 nearly always does."""

    def generate(self, prompts, n, params, choices, marker, seeds=None):  # prompts come as AB, BA, AB, BA ...
        return [[Completion(text="[[A]]", verdict_logprobs=(-0.1, -2.4) if i % 2 == 0 else (-0.3, -1.4))] * n
                for i in range(len(prompts))]


def test_adaptive_stops_a_position_driven_pair_after_one_round():
    judgments, samples = Judge(FirstShown(), JudgeConfig(mode="cot", samples=8, adaptive=True)).judge(PAIRS[:3], "r")
    assert len(samples) == 3 * 4  # one round of 2 per order, not 16 per pair
    assert all(j.order_consistent is False and (j.votes_a, j.votes_b) == (2, 2) for j in judgments)
    fixed = Judge(FirstShown(), JudgeConfig(mode="cot", samples=8)).judge(PAIRS[:3], "r")[0]
    # the 2-2 tie is broken by the verdict probabilities, as the 8-8 tie of a fixed run is
    assert [j.label for j in judgments] == [j.label for j in fixed] == ["A"] * 3


def test_forced_samples_count_as_votes_and_are_flagged():
    forced = Judge(FakeBackend(abstain_rate=0.5), JudgeConfig(mode="cot", samples=4))
    free = Judge(FakeBackend(abstain_rate=0.5), JudgeConfig(mode="cot", samples=4, force_verdict=False))
    fj, fs = forced.judge(PAIRS[:5], "r")
    nj, ns = free.judge(PAIRS[:5], "r")
    assert any(s.forced for s in fs) and all(s.verdict for s in fs)
    assert not any(s.forced for s in ns) and any(s.verdict is None for s in ns)
    assert sum(j.abstained for j in fj) == 0 < sum(j.abstained for j in nj)


def test_the_rationale_shown_with_a_label_reads_in_the_pairs_own_letters():
    import math

    from labeler.judge.aggregate import SWAPPED_NOTE, pool_cot
    from schemas import Sample

    def sample(position, idx, verdict, p_a, text):
        return Sample(pair_id="p", judge_key="k", position=position, sample_idx=idx, text=text, verdict=verdict,
                      logprob_a=math.log(p_a), logprob_b=math.log(1 - p_a))

    # original B wins; the BA sample is the most confident, but its text calls response_b "Response A"
    swapped = sample("BA", 0, "B", 0.01, "Response A is better.\n[[A]]")
    own = sample("AB", 0, "B", 0.3, "Response B is better.\n[[B]]")
    loser = sample("AB", 1, "A", 0.9, "Response A is better.\n[[A]]")
    assert pool_cot([swapped, own, loser]).rationale == "Response B is better.\n[[B]]"
    only_swapped = pool_cot([swapped, loser, sample("BA", 1, "B", 0.2, "A wins.\n[[A]]")])
    assert only_swapped.label == "B" and only_swapped.rationale == SWAPPED_NOTE + "Response A is better.\n[[A]]"


def test_progress_moves_per_finished_sample_not_per_batch(tmp_path):
    from contextlib import contextmanager

    from labeler.pipeline import annotate
    from labeler.store import Store

    moves: list[float] = []

    @contextmanager
    def recording(total):
        yield moves.append

    pairs = [Pair(pair_id=f"p{i}", prompt=f"q{i}", response_a="a", response_b="b") for i in range(3)]
    judge = Judge(FakeBackend(), JudgeConfig(mode="cot", samples=4))
    with Store(tmp_path / "l.duckdb") as store:
        store.con.executemany("INSERT INTO pairs (pair_id, prompt, response_a, response_b, content_hash, source_file,"
                              " source_line) VALUES (?, ?, ?, ?, ?, 'f', 0)",
                              [[p.pair_id, p.prompt, p.response_a, p.response_b, p.pair_id] for p in pairs])
        annotate(store, [], judge, batch_size=3, progress=recording)
    assert moves.count(1 / 8) == 3 * 2 * 4  # one move per sample: 2 orders x K=4 per pair
    assert sum(moves) == pytest.approx(3)


def test_adaptive_runs_judge_as_many_samples_per_step_as_fixed_k(tmp_path):
    """Round one of adaptive voting draws `adaptive_round` samples per order where fixed K draws K: annotate hands
    the judge K / adaptive_round times the pairs, so the decode batch is as wide."""
    from helpers import write_pairs

    from labeler.pipeline import annotate
    from labeler.store import Store

    assert JudgeConfig(mode="cot", samples=8, adaptive=True, adaptive_round=2).batch_pairs(4) == 16
    assert JudgeConfig(mode="cot", samples=5, adaptive=True, adaptive_round=2).batch_pairs(4) == 12  # 3 rounds
    assert JudgeConfig(mode="cot", samples=8).batch_pairs(4) == 4
    widths = {}
    for adaptive in (False, True):
        backend, calls = FakeBackend(abstain_rate=0.0), []
        generate = backend.generate
        backend.generate = lambda prompts, n, *a, **k: (calls.append(len(prompts) * n), generate(prompts, n, *a, **k))[1]
        judge = Judge(backend, JudgeConfig(mode="cot", samples=8, adaptive=adaptive))
        with Store(tmp_path / f"{adaptive}.duckdb") as store:
            annotate(store, [write_pairs(tmp_path / "p.jsonl", 40)], judge, batch_size=4)
        widths[adaptive] = calls[0]
    assert widths == {False: 4 * 2 * 8, True: 16 * 2 * 2}


def test_adaptive_annotate_keeps_its_pairs_in_flight_and_labels_as_one_batch_does(tmp_path):
    """Continuous batching: a pair that stops early gives its place to a new pair in the next round, so every
    round but the tail's decodes `width` pairs; the judgments, samples and progress are those of judging the
    pairs as one batch, since each sample is seeded by its pair and index alone."""
    from contextlib import contextmanager

    from helpers import write_pairs

    from labeler.pipeline import annotate
    from labeler.store import Store

    config = JudgeConfig(mode="cot", samples=8, adaptive=True)
    backend, widths, moves = FakeBackend(abstain_rate=0.0), [], []
    generate = backend.generate
    backend.generate = lambda prompts, n, *a, **k: (widths.append(len(prompts) // 2), generate(prompts, n, *a, **k))[1]

    @contextmanager
    def recording(total):
        yield moves.append

    with Store(tmp_path / "l.duckdb") as store:
        result = annotate(store, [write_pairs(tmp_path / "p.jsonl", 60)], Judge(backend, config), batch_size=2,
                          progress=recording)
        stored = {(s.pair_id, s.position, s.sample_idx): s.text for p in result.judged
                  for s in store.samples_for(p.pair_id, result.judge_key)}
        pairs = store.pending_pairs("another judge", None)
    whole_judgments, whole_samples = Judge(FakeBackend(abstain_rate=0.0), config).judge(pairs, "whole")
    assert stored == {(s.pair_id, s.position, s.sample_idx): s.text for s in whole_samples}
    assert ({j.pair_id: (j.label, j.confidence) for j in result.judged}
            == {j.pair_id: (j.label, j.confidence) for j in whole_judgments})
    rounds = len(whole_samples) / (8 * 2)  # pair-rounds of 2 samples per order
    assert 8 < rounds < 60 * 4  # some pairs stopped early, so later rounds had places to fill
    full = [w for w in widths if w == 8]
    assert len(full) >= len(widths) - 4 and widths[0] == 8  # only the tail's last rounds decode fewer pairs
    assert min(moves) >= 0 and sum(moves) == pytest.approx(60)


def test_a_run_keeps_its_leases_on_pairs_in_flight_and_frees_the_stored_ones(tmp_path):
    from helpers import write_pairs

    from labeler.ingestion import ingest_files
    from labeler.store import Store

    with Store(tmp_path / "l.duckdb") as store:
        ingest_files(store, [write_pairs(tmp_path / "p.jsonl", 6)])
        ids = [p.pair_id for p in store.pending_pairs("k", None)]
        for run in ("r1", "r2"):
            store.start_run(run, "annotate", 6, "k")
        first, _ = store.claim_pairs("k", "r1", ids, 2)
        more, _ = store.claim_pairs("k", "r1", ids[2:], 2)  # r1 takes more pairs while the first two are in flight
        assert first == ids[:2] and more == ids[2:4]
        assert store.claim_pairs("k", "r2", ids, 6) == (ids[4:], 4)
        judgment, _ = Judge(FakeBackend(), JudgeConfig()).judge(store.pending_pairs("k", None)[:1], "r1")
        store.save_batch("r1", [judgment[0].model_copy(update={"judge_key": "k"})], [])
        store.claim_pairs("k", "r1", [], 1)  # each claim frees the run's leases on the pairs it has stored
        held = store.con.execute("SELECT pair_id FROM leases WHERE run_id = 'r1' ORDER BY pair_id").fetchall()
        assert [h[0] for h in held] == ids[1:4]
