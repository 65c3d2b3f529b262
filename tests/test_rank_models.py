"""`labeler rank` with real (tiny) models: a reward judge reads each response once, and the DPO pairs exported from
rankings take a step of TRL's DPOTrainer."""


import datasets
import pytest
import torch

from helpers import run
from test_rank import samples
from test_export_trl import ARGS, changed


def test_a_reward_judge_reads_each_response_once_and_ranks_by_reward(tmp_path, reward_dir, monkeypatch):
    from labeler import api
    from labeler.judge.backends.reward import RewardBackend, bt_text
    from labeler.store import Store

    reads = []
    real = RewardBackend.rewards
    monkeypatch.setattr(RewardBackend, "rewards", lambda self, texts: reads.extend(texts) or real(self, texts))
    data = samples(tmp_path / "s.jsonl", groups=2, n=8)
    result = api.rank(tmp_path / "r.duckdb", [data], backend="reward", model=reward_dir)
    assert result.method == "reward" and result.judge_calls == 16 and len(reads) == 16  # N per prompt, not N(N-1)/2
    with Store(tmp_path / "r.duckdb") as store:
        scores = store.rank_scores()
        group = store.groups()[0]
        assert store.count("pairs") == 0  # nothing compared pairwise
    backend = RewardBackend(reward_dir)
    backend.load()
    expected = real(backend, [bt_text(backend.tokenizer, group.prompt, r.text) for r in group.responses])
    assert [s.score for s in scores[group.group_id]] == pytest.approx(expected, abs=1e-4)
    assert all(s.method == "reward" and s.uncertainty is None for v in scores.values() for s in v)


def test_dpo_pairs_from_rankings_take_a_step_of_trl(tmp_path, tiny_llama):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    db = tmp_path / "r.duckdb"
    run("rank", samples(tmp_path / "s.jsonl", groups=2, n=4), "--db", db, "--backend", "fake", "--budget", "4", "-q",
        ok=True)
    run("export", "--db", db, "--dpo", "--pairs", "best-rest", "--out", tmp_path / "dpo.jsonl", ok=True)
    dataset = datasets.load_dataset("json", data_files=str(tmp_path / "dpo.jsonl"), split="train")
    assert dataset.num_rows >= 4 and set(dataset.column_names) == {"prompt", "chosen", "rejected"}
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    DPOTrainer(model=model, args=DPOConfig(output_dir=str(tmp_path / "o"), max_length=256, **ARGS),
               train_dataset=dataset, processing_class=tokenizer).train()
    assert changed(model, before)


def test_rank_options_are_checked_and_a_missing_judge_is_named(tmp_path):
    data = samples(tmp_path / "s.jsonl", groups=1, n=4)
    assert run("rank", data, "--db", tmp_path / "a.duckdb", "--budget", "0").exit_code == 2
    missing = run("rank", data, "--db", tmp_path / "b.duckdb", "--judge", "v009-nope")
    assert missing.exit_code == 1 and "v009-nope" in missing.stderr


def test_an_ensembles_spread_over_its_members_is_each_responses_uncertainty():
    from labeler.judge.backends.probe import ProbeHead
    from labeler.judge.backends.reward import RewardBackend

    generator = torch.Generator().manual_seed(0)
    backend = RewardBackend.__new__(RewardBackend)  # a probe ensemble of 3 heads, without a base model
    backend._probe, backend._model = True, object()  # loaded
    backend._head = ProbeHead({"scale": torch.ones(4), "w_help": torch.randn(3, 4, generator=generator)})
    h = torch.randn(2, 4, generator=generator)
    backend._probe_features = lambda texts: h[[{"a": 0, "b": 1}[t] for t in texts]]
    got = backend.reward_spreads(["a", "b", "a"])
    member = backend._head.member_rewards(h)
    for i, (reward, spread) in enumerate(got[:2]):
        assert reward == pytest.approx(float(member[:, i].mean())) and spread == pytest.approx(float(member[:, i].std()))
        assert spread > 0
    assert got[2] == got[0]


def test_the_shipped_probe_starter_ranks_by_default(tmp_path, tiny_llama, monkeypatch):
    """`labeler rank` with no judge option: the starter (a bt-probe head, judged by the reward backend, loaded on
    first read) scores each response once."""
    from starter_fixture import ship_tiny_probe_starter

    from labeler import api

    ship_tiny_probe_starter(tmp_path, tiny_llama, monkeypatch)
    result = api.rank(tmp_path / "r.duckdb", [samples(tmp_path / "s.jsonl", groups=2, n=5)])
    assert result.method == "reward" and result.judge_calls == 10 and result.judge_id.startswith("labeler-starter")
