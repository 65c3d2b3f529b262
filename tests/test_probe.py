"""bt-probe: Bradley-Terry heads on the frozen features of a cut base model (trainer/probe.py,
labeler/judge/backends/probe.py): the head's fit, retrain end to end on the tiny Llama, resume after a crash."""

import functools
import json
import math
from pathlib import Path

import pytest
import torch

from helpers import run as run_cli
from labeler.judge.backends.probe import CONFIG, HEAD
from trainer.config import ProbeTrainConfig
from trainer.probe import fit_head

run = functools.partial(run_cli, ok=True)
pytestmark = pytest.mark.usefixtures("no_starter")  # an install without a starter: the gate's incumbent is the start


def planted(n: int, seed: int):
    """Features where the better response is further along +e0 for helpfulness rows and along -e0 for safety rows,
    and safety rows' responses carry +3 on e1 (what the gate can recognise)."""
    g = torch.Generator().manual_seed(seed)
    safety = torch.arange(n) % 3 == 0
    worse = torch.randn(n, 16, generator=g)
    better = worse + torch.randn(n, 16, generator=g) * 0.5
    better[:, 0] = worse[:, 0] + torch.where(safety, -1.0, 1.0)
    for h in (better, worse):
        h[:, 1] = torch.where(safety, 3.0, 0.0) + 0.3 * torch.randn(n, generator=g)
    return better, worse, safety


def test_one_reward_cannot_serve_opposite_preferences_and_the_gated_mixture_can():
    better, worse, safety = planted(600, 0)
    test_better, test_worse, test_safety = planted(300, 1)
    plain = fit_head(better, worse, safety, ProbeTrainConfig())
    gated = fit_head(better, worse, safety, ProbeTrainConfig(safety_sources="harm"))
    assert not plain.gated and gated.gated
    right = lambda head, mask: float((head.rewards(test_better) > head.rewards(test_worse))[mask].float().mean())  # noqa: E731
    assert right(gated, test_safety) > 0.9 and right(gated, ~test_safety) > 0.9
    assert right(plain, test_safety) < 0.2  # the majority's direction, applied to the safety rows
    assert float(gated.t["w_safety"][0]) < 0 < float(gated.t["w_help"][0])
    # antisymmetric: swapping the responses flips the margin exactly
    margin = gated.rewards(test_better) - gated.rewards(test_worse)
    assert torch.allclose(gated.rewards(test_worse) - gated.rewards(test_better), -margin)


def gold_with_sources(path: Path, n: int) -> Path:
    """Helpfulness pairs where the longer answer is right, and `harm` pairs where the refusal is."""
    with path.open("w") as f:
        for i in range(n):
            harm = i % 2 == 1
            good, bad = (("I can't help with that.", f"Sure, here is how to do {i} bad things.") if harm
                         else (f"The answer is {2 * i}, because {i} + {i} = {2 * i}.", "No idea."))
            label = "A" if i % 4 < 2 else "B"
            a, b = (good, bad) if label == "A" else (bad, good)
            f.write(json.dumps({"id": f"g{i:03d}", "prompt": f"Question {i}?", "response_a": a, "response_b": b,
                                "label": label, "source": "harm" if harm else "math"}) + "\n")
    return path


def test_retrain_bt_probe_end_to_end_then_annotate_by_reward_difference(tmp_path, tiny_llama):
    db = tmp_path / "l.duckdb"
    gold = gold_with_sources(tmp_path / "gold.jsonl", 24)
    out = run("retrain", "--db", db, "--gold", gold, "--model", tiny_llama, "--method", "bt-probe",
              "--probe-layers", "1", "--safety-sources", "harm", "--force", "--json", "--quiet")
    result = json.loads(out.stdout)
    assert result["version"] == "v001-bt-probe" and result["active"]
    v = next(v for v in json.loads(run("judges", "list", "--db", db, "--json").stdout) if v["version"] == "v001-bt-probe")
    assert (v["method"], v["backend"], v["weights"], v["mode"]) == ("bt-probe", "reward", "head", "direct")
    vdir = Path(v["path"])
    assert sorted(p.name for p in vdir.glob("*.safetensors")) == [HEAD]  # nothing of the base is copied
    config = json.loads((vdir / CONFIG).read_text())
    assert (config["layers"], config["safety_sources"]) == (1, ["harm"])
    train = json.loads((vdir / "metrics.json").read_text())["iterations"][0]["train"]
    assert train["gated"] and train["safety_rows"] > 0 and train["rows"] == result["train_pairs"]

    annotate_new_pairs(db, tmp_path)
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("SELECT j.p_a, j.order_consistent, p.prompt, p.response_a, p.response_b FROM judgments j "
                       "JOIN pairs p USING (pair_id) WHERE j.judge_id = ? AND p.pair_id LIKE 'n%'",
                       [v["judge_id"]]).fetchall()
    con.close()
    from labeler.judge.backends.reward import RewardBackend, bt_text

    backend = RewardBackend(vdir)
    backend.load()
    assert len(rows) == 4 and all(consistent for _, consistent, *_ in rows)
    backend.model  # loads the trunk and the head
    head = backend._head
    for p_a, _, prompt, a, b in rows:
        h = backend._probe_features([bt_text(backend.tokenizer, prompt, a), bt_text(backend.tokenizer, prompt, b)])
        mean, spread = head.strength(h[:1], h[1:])
        r_a, r_b = backend.rewards([bt_text(backend.tokenizer, prompt, a), bt_text(backend.tokenizer, prompt, b)])
        assert float(mean) == pytest.approx(r_a - r_b, abs=1e-5)  # the members' mean difference
        evidence = float(mean) / math.sqrt(1 + head.spread_weight * float(spread) ** 2)
        assert p_a == pytest.approx(1 / (1 + math.exp(-evidence)), abs=1e-5)


def annotate_new_pairs(db: Path, tmp_path: Path, n: int = 4) -> None:
    """`n` unlabelled pairs n0.. annotated with the active judge."""
    new = tmp_path / "new.jsonl"
    new.write_text("".join(json.dumps({"id": f"n{i}", "prompt": f"Q{i}?", "response_a": f"yes {i}",
                                       "response_b": f"no, {i} times no"}) + "\n" for i in range(n)))
    run("annotate", new, "--db", db, "-q")


class Killed(Exception):
    pass


def test_a_crashed_run_resumes_after_its_last_saved_feature_chunk(tmp_path, tiny_llama, monkeypatch):
    from labeler import api
    from trainer import probe

    db = tmp_path / "l.duckdb"
    gold = gold_with_sources(tmp_path / "gold.jsonl", 30)
    calls, crash = [], [True]
    real = probe.features

    def crash_on_third_chunk(*args, **kwargs):
        calls.append(len(args[2]))
        if len(calls) == 3 and crash and crash.pop():
            raise Killed  # as a kill between two chunks (each chunk file is written atomically)
        return real(*args, **kwargs)

    monkeypatch.setattr(probe, "features", crash_on_third_chunk)
    options = {"train": {"layers": 1, "chunk_pairs": 5}, "retrain": {"force": True}}
    with pytest.raises(Killed):
        api.retrain(db, gold=[gold], method="bt-probe", model=tiny_llama, options=options)
    work = next((tmp_path / "l.judges").glob(".tmp-*"))
    assert len(list(work.glob("iter1/features/rows-*.pt"))) == 2
    calls.clear()
    result = api.retrain(db, gold=[gold], method="bt-probe", model=tiny_llama, options=options)
    assert result.resumed and result.version == "v001-bt-probe"
    assert len(calls) == math.ceil(result.train_pairs / 5) - 2  # the two saved chunks were not read again


def test_safety_sources_that_match_no_pair_are_an_error_naming_the_sources(tmp_path, tiny_llama):
    db = tmp_path / "l.duckdb"
    gold = gold_with_sources(tmp_path / "gold.jsonl", 12)
    out = run_cli("retrain", "--db", db, "--gold", gold, "--model", tiny_llama, "--method", "bt-probe",
                  "--probe-layers", "1", "--safety-sources", "harmless", "--quiet")
    assert out.exit_code == 1 and "no training pair has that source (sources: harm, math)" in out.output


def test_gold_takes_every_file_a_shell_glob_gives_it(tmp_path, tiny_llama):
    db = tmp_path / "l.duckdb"
    rows = gold_with_sources(tmp_path / "gold.jsonl", 12).read_text().splitlines()
    harm, math = tmp_path / "harm.jsonl", tmp_path / "math.jsonl"
    harm.write_text("\n".join(r for r in rows if '"harm"' in r) + "\n")
    math.write_text("\n".join(r for r in rows if '"harm"' not in r) + "\n")
    out = run_cli("retrain", "--db", db, "--gold", harm, math, "--model", tiny_llama, "--method", "bt-probe",
                  "--probe-layers", "1", "--safety-sources", "harmless", "--quiet")
    assert out.exit_code == 1 and "no training pair has that source (sources: harm, math)" in out.output


def test_features_after_several_blocks_in_one_pass_match_a_trunk_cut_there(tiny_llama):
    from transformers import AutoTokenizer

    from labeler.judge.backends.probe import features, load_trunk

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    texts = ["short", "a somewhat longer text " * 5, "mid length text here"]
    full = load_trunk(tiny_llama, 2)
    both = features(full, tok, texts, 32, batch_size=2, bf16=False, layers=[1, 2])
    for k, layers in enumerate((1, 2)):
        alone = features(load_trunk(tiny_llama, layers), tok, texts, 32, batch_size=2, bf16=False)
        assert torch.allclose(both[k], alone, atol=1e-5)


def test_features_are_the_same_in_token_budget_batches_as_in_fixed_ones(tiny_llama):
    """On the CPU a feature batch closes once it holds `cpu_rows` tokens; the batching changes no feature."""
    from transformers import AutoTokenizer

    from labeler.judge.backends.batching import length_batches
    from labeler.judge.backends.probe import features, load_trunk

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    texts = ["short", "a somewhat longer text " * 5, "mid length text here", "tiny", "another text of some length " * 2]
    lengths = [len(tok(t, add_special_tokens=False).input_ids) for t in texts]
    assert lengths == [2, 56, 7, 3, 19]
    assert length_batches(lengths, 8, 40) == [[1], [4, 2, 3], [0]]  # longest first; 3 x 19 tokens close a batch
    assert length_batches(lengths, 2) == [[1, 4], [2, 3], [0]]
    assert length_batches(lengths, 8, 1) == [[1], [4], [2], [3], [0]]
    assert length_batches(lengths, 2, longest_first=False) == [[0, 3], [2, 4], [1]]
    trunk = load_trunk(tiny_llama, 2)
    widths, real_forward = [], trunk.forward
    trunk.forward = lambda **kw: widths.append(kw["input_ids"].shape[1]) or real_forward(**kw)
    features(trunk, tok, texts, 64, batch_size=2, bf16=False)
    assert widths == [3, 19, 56]  # without cpu_rows: shortest first, batch_size texts (the shipped head's batches)
    fixed = features(trunk, tok, texts, 64, batch_size=8, bf16=False, cpu_rows=math.inf)
    assert torch.allclose(features(trunk, tok, texts, 64, batch_size=8, bf16=False, cpu_rows=1), fixed, atol=1e-5)
