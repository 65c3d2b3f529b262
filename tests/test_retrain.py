"""`labeler retrain` end to end on the tiny random Llama: gold file -> new version -> annotate with it; the promotion
gate; crashes at every step of publishing; kill -9 mid-training then resume."""

import functools
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from helpers import run as run_cli
from helpers import write_pairs
from labeler.cli import app
from labeler.judge.backends.models import model_fingerprint
from labeler.store import Store
from schemas import JudgeVersion, TrainingRow

runner = CliRunner()
FAST = ["--max-steps", "2", "--learning-rate", "1e-3", "--eval-samples", "1", "--max-new-tokens", "12", "-k", "2"]


run = functools.partial(run_cli, ok=True)  # every call must succeed unless it passes ok=False
pytestmark = pytest.mark.usefixtures("no_starter")  # an install without a starter: the gate's incumbent is the start


def versions(db) -> list[JudgeVersion]:
    """The registered versions (without the built-in starter row this install lists first)."""
    return [JudgeVersion.model_validate({**v, "metrics": {}}) for v in json.loads(
        run("judges", "list", "--db", db, "--json").stdout) if v["version"] != "starter"]


def query(db, sql):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def data(tmp_path):
    gold = write_pairs(tmp_path / "gold.jsonl", 10, labeled=True)
    new = write_pairs(tmp_path / "new.jsonl", 4, start=50)
    return tmp_path / "l.duckdb", gold, new


def test_star_dpo_end_to_end_then_annotate_and_relabel_with_the_new_judge(data, tiny_llama):
    db, gold, new = data
    run("annotate", gold, "--db", db, "--model", tiny_llama, "--mode", "cot", "-k", "2", "--max-new-tokens", "12", "-q")
    out = run("retrain", "--db", db, "--gold", gold, "--model", tiny_llama, *FAST, "--force", "--json", "--quiet")
    result = json.loads(out.stdout)
    assert result["version"] == "v001-star-dpo" and result["promoted"] and result["train_rows"] > 0
    (v,) = versions(db)
    assert (v.version, v.active, v.weights, v.mode, v.backend) == ("v001-star-dpo", True, "lora", "cot", "transformers")
    assert v.heldout_agreement == result["heldout_agreement"] and v.heldout_n == result["heldout_n"] >= 1
    vdir = Path(v.path)
    assert vdir.parent == db.parent / "l.judges" and not list(vdir.parent.glob(".tmp-*"))
    files = {p.name for p in vdir.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "labeler_judge.json",
            "manifest.json", "train_data.jsonl", "metrics.json"} <= files
    manifest = json.loads((vdir / "manifest.json").read_text())
    sampling = manifest["iterations"][0]  # annotate's samples (same judge, K and decoding) were reused
    assert sampling["reused_pairs"] == result["train_pairs"] and sampling["sampled_pairs"] == 0
    heldout = {p["pair_id"] for p in manifest["heldout_pairs"]}
    rows = [TrainingRow.model_validate_json(x) for x in (vdir / "train_data.jsonl").read_text().splitlines()]
    assert rows and heldout and not heldout & {r.pair_id for r in rows}  # the held-out split is never trained on
    assert {r.position for r in rows} == {"AB", "BA"}
    assert query(db, "SELECT count(*) FROM gold_split WHERE split = 'heldout'")[0][0] == len(heldout)

    run("annotate", new, "--db", db, "--max-new-tokens", "12", "-q")  # no --model: the active version judges
    judged = query(db, "SELECT DISTINCT judge_id, mode, samples FROM judgments WHERE pair_id LIKE 'p05%'")
    assert judged == [(v.judge_id, "cot", 1)]

    relabel = run("annotate", "--db", db, "--relabel", "--mode", "direct")
    assert "changed label against the previous judge" in relabel.output
    (n_target,) = query(db, "SELECT n_target FROM runs WHERE command = 'relabel'")[0]
    assert n_target == 4  # only the pairs without a human label


def test_bradley_terry_baseline_judges_by_reward_difference(data, tiny_llama):
    db, gold, new = data
    run("retrain", "--db", db, "--gold", gold, "--model", tiny_llama, "--method", "bt", "--max-steps", "2",
        "--learning-rate", "1e-2", "--force", "-q")
    (v,) = versions(db)
    assert (v.method, v.backend, v.mode, v.active) == ("bt", "reward", "direct", True)
    run("annotate", new, "--db", db, "-q")
    rows = query(db, "SELECT j.pair_id, j.p_a, j.order_consistent, p.prompt, p.response_a, p.response_b "
                     "FROM judgments j JOIN pairs p USING (pair_id) WHERE j.judge_id = '%s' AND "
                     "j.pair_id LIKE 'p05%%'" % v.judge_id)
    assert len(rows) == 4 and all(consistent for _, _, consistent, *_ in rows)
    from labeler.judge.backends.reward import RewardBackend, bt_text

    backend = RewardBackend(v.path)
    backend.load()
    for _, p_a, _, prompt, a, b in rows:
        r_a, r_b = backend.rewards([bt_text(backend.tokenizer, prompt, a), bt_text(backend.tokenizer, prompt, b)])
        assert p_a == pytest.approx(1 / (1 + math.exp(r_b - r_a)), abs=1e-5)
    bad = run("annotate", "--db", db, "--mode", "cot", ok=False)
    assert bad.exit_code == 1 and "use --mode direct" in bad.output


def test_gate_refuses_a_worse_judge_and_force_or_use_overrides(data, tiny_llama, monkeypatch):
    db, gold, _ = data
    genrm = ["--method", "genrm-sft", "--max-steps", "2", "--learning-rate", "1e-3", "-q"]
    run("retrain", "--db", db, "--gold", gold, "--model", tiny_llama, *genrm, "--force")
    import labeler.retraining

    # each retrain evaluates the new judge, then the one it replaces: 0.25 against 0.75
    scores = itertools.cycle([0.25, 0.75])
    monkeypatch.setattr(labeler.retraining, "heldout_agreement", lambda *a: next(scores))
    out = run("retrain", "--db", db, *genrm, "--json")
    result = json.loads(out.stdout)
    assert (result["version"], result["promoted"], result["active"]) == ("v002-genrm-sft", False, False)
    assert (result["heldout_agreement"], result["parent_agreement"]) == (0.25, 0.75)
    v1, v2 = versions(db)
    assert v1.active and not v2.active and not v2.promoted and v2.parent == "v001-genrm-sft"
    assert Path(v2.path).is_dir()  # kept, so it can still be chosen by hand
    table = run("judges", "list", "--db", db).output
    assert "rejected" in table
    assert "active judge: v002-genrm-sft" in run("judges", "use", "v002-genrm-sft", "--db", db).output
    assert [v.active for v in versions(db)] == [False, True]
    forced = json.loads(run("retrain", "--db", db, *genrm, "--json", "--force", "--learning-rate", "2e-3").stdout)
    assert forced["forced"] and forced["active"] and forced["version"] == "v003-genrm-sft"
    assert [v.active for v in versions(db)] == [False, False, True]
    run("judges", "use", "default", "--db", db)
    assert not any(v.active for v in versions(db))


@pytest.mark.parametrize("step", ["publish", "register"])
def test_a_crash_while_publishing_leaves_the_previous_judge_active(data, tiny_llama, monkeypatch, step):
    db, gold, new = data
    genrm = ["--method", "genrm-sft", "--max-steps", "2", "--learning-rate", "1e-3", "-q"]
    run("retrain", "--db", db, "--gold", gold, "--model", tiny_llama, *genrm, "--force")
    import labeler.retraining

    def crash(*args, **kwargs):
        raise RuntimeError(f"simulated crash in {step}")

    monkeypatch.setattr(labeler.retraining, step, crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        runner.invoke(app, [str(a) for a in ("retrain", "--db", db, *genrm, "--force")], catch_exceptions=False)
    (v1,) = versions(db)
    assert v1.active and v1.version == "v001-genrm-sft"
    judges = db.parent / "l.judges"
    assert (judges / "v002-genrm-sft").is_dir() == (step == "register")  # at most an unregistered dir
    run("annotate", new, "--db", db, "-q")  # the previous judge still judges
    assert query(db, "SELECT DISTINCT judge_id FROM judgments WHERE pair_id LIKE 'p05%'") == [(v1.judge_id,)]
    monkeypatch.undo()
    again = json.loads(run("retrain", "--db", db, *genrm, "--force", "--json").stdout)
    assert again["version"] == ("v003-genrm-sft" if step == "register" else "v002-genrm-sft")
    assert again["resumed"]  # the trained model of the crashed run was reused


def test_kill_9_during_training_keeps_the_active_judge_then_resumes(data, tiny_llama):
    db, gold, new = data
    run("ingest", gold, "--db", db)
    with Store(db) as store:  # an active full-weights version: the tiny model itself
        store.register_judge(JudgeVersion(
            version="v001-genrm-sft", method="genrm-sft", start_judge_id="tiny@0", base_model=str(tiny_llama),
            path=str(tiny_llama), weights="full", backend="transformers", mode="direct", samples=1,
            judge_id="v001", heldout_n=0, promoted=True, active=True, created_at=datetime(2026, 1, 1)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "labeler", "retrain", "--db", str(db), "--method", "star-dpo", "-k", "2",
           "--max-new-tokens", "12", "--eval-samples", "1", "--max-steps", "12", "--save-steps", "1",
           "--learning-rate", "1e-4", "--force", "--json", "--quiet"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=db.parent)
    judges = db.parent / "l.judges"
    deadline = time.monotonic() + 120
    while not list(judges.glob(".tmp-*/iter1/checkpoints/checkpoint-2")):
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (v1,) = versions(db)
    assert v1.active and v1.version == "v001-genrm-sft"
    run("annotate", new, "--db", db, "-q")
    assert query(db, "SELECT DISTINCT judge_id FROM judgments WHERE pair_id LIKE 'p05%'") == [
        (f"{Path(tiny_llama).name}@{model_fingerprint(tiny_llama)}",)]
    assert ("interrupted",) in query(db, "SELECT status FROM runs WHERE command = 'retrain'")

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=db.parent, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["resumed"] and result["version"] == "v002-star-dpo" and result["active"]
    steps = json.loads((Path(result["path"]) / "metrics.json").read_text())["iterations"][0]["train"]
    # a kill can land mid-checkpoint: an incomplete one is dropped and the one before it is used
    assert steps["steps"] == 12 and steps["resumed_from"].endswith(tuple(f"checkpoint-{i}" for i in range(1, 12)))
    assert versions(db)[1].parent == "v001-genrm-sft"


def test_two_star_iterations_sample_with_the_new_judge_and_continue_its_adapter(data, tiny_llama):
    db, gold, _ = data
    out = run("retrain", "--db", db, "--gold", gold, "--model", tiny_llama, "--method", "star-sft",
              "--iterations", "2", *FAST, "--json", "-q")
    result = json.loads(out.stdout)
    vdir = Path(result["path"])
    iterations = json.loads((vdir / "metrics.json").read_text())["iterations"]
    assert [i["iteration"] for i in iterations] == [1, 2] and all(i["train"]["steps"] == 2 for i in iterations)
    assert iterations[0]["data"]["judge_id"] == result["start_judge_id"]
    assert iterations[1]["data"]["judge_id"].startswith("model@")  # iteration 1's adapter sampled iteration 2
    assert json.loads((vdir / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny_llama)
    rows = [TrainingRow.model_validate_json(x) for x in (vdir / "train_data.jsonl").read_text().splitlines()]
    assert {r.iteration for r in rows} == {1, 2}
    stored = {j for (j,) in query(db, "SELECT DISTINCT judge_id FROM judgments")}
    assert stored == {result["start_judge_id"], vdir.name + "@" + model_fingerprint(vdir)}  # not the intermediate
