"""The shipped starter judge: the default judge while no version is active, calibrated out of the box, listed by
`judges list`, with the untrained base model one name away (`--judge base`)."""

import json

import duckdb

from helpers import write_pairs
from labeler.judge.backends import starter
from labeler.store import Store
from trainer.versions import start_point


def judge_ids(db) -> set[str]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {r[0] for r in con.execute("SELECT DISTINCT judge_id FROM judgments").fetchall()}


def test_the_default_judge_is_the_starter_with_its_shipped_calibration(tmp_path, tiny_starter, tiny_llama, cli):
    db = tmp_path / "l.duckdb"
    cli("annotate", write_pairs(tmp_path / "d.jsonl", 3), "--db", db, "-q", ok=True)
    starter_id = tiny_starter["judge"]["judge_id"]
    assert judge_ids(db) == {starter_id} and starter_id.startswith("labeler-starter-")
    with Store(db) as store:
        assert store.calibration(starter_id, "direct", 1).temperature == 2.0
    cli("annotate", "--db", db, "--judge", "base", "-q", ok=True)
    assert {i.split("@")[0] for i in judge_ids(db)} == {starter_id.split("@")[0], tiny_llama.name}


def test_a_user_calibration_is_kept_over_the_shipped_one(tmp_path, tiny_starter, cli):
    db = tmp_path / "l.duckdb"
    cli("annotate", write_pairs(tmp_path / "d.jsonl", 3), "--db", db, "-q", ok=True)
    with Store(db) as store:
        record = store.calibration(tiny_starter["judge"]["judge_id"], "direct", 1)
        store.save_calibration(record.model_copy(update={"temperature": 0.5}))
    cli("annotate", "--db", db, "-q", ok=True)
    with Store(db) as store:
        assert store.calibration(tiny_starter["judge"]["judge_id"], "direct", 1).temperature == 0.5


def test_the_starter_refuses_a_default_model_it_was_not_trained_on(tmp_path, tiny_starter, cli):
    manifest_file = starter._shipped() / "manifest.json"
    manifest_file.write_text(json.dumps({**tiny_starter, "base_model": {"name": "tiny", "fingerprint": "0" * 12}}))
    result = cli("annotate", write_pairs(tmp_path / "d.jsonl", 1), "--db", tmp_path / "l.duckdb")
    assert result.exit_code == 1 and "the starter judge was trained on tiny@000000000000" in result.output


def test_judges_list_shows_the_starter_active_until_a_version_is(tmp_path, tiny_starter, tiny_llama, cli):
    from test_cli_judges import record

    db = tmp_path / "l.duckdb"
    cli("ingest", write_pairs(tmp_path / "d.jsonl", 1), "--db", db, ok=True)
    listed = json.loads(cli("judges", "list", "--db", db, "--json").stdout)
    assert [(v["version"], v["active"]) for v in listed] == [("starter", True)]
    with Store(db) as store:
        store.register_judge(record(tmp_path, "v001-a", True, tiny_llama))
    listed = json.loads(cli("judges", "list", "--db", db, "--json").stdout)
    assert [(v["version"], v["active"]) for v in listed] == [("starter", False), ("v001-a", True)]
    assert "built-in" in cli("judges", "list", "--db", db).output
    cli("judges", "use", "default", "--db", db, ok=True)
    assert json.loads(cli("judges", "list", "--db", db, "--json").stdout)[0]["active"] is True


def test_training_starts_from_the_starter_unless_told_base(tmp_path, tiny_starter, tiny_llama):
    with Store(tmp_path / "l.duckdb") as store:
        default, parent = start_point(store)
        assert default.adapter == starter.starter_dir() and default.base_model == tiny_llama and parent is None
        base, _ = start_point(store, version="base")
        assert base.judge_dir == tiny_llama and base.adapter is None


def test_without_a_shipped_starter_the_base_model_is_the_default(tmp_path, no_starter, tiny_llama, cli, monkeypatch):
    from labeler.judge.backends import models

    monkeypatch.setattr(models, "default_model_dir", lambda cache_dir=None: tiny_llama)
    db = tmp_path / "l.duckdb"
    cli("annotate", write_pairs(tmp_path / "d.jsonl", 2), "--db", db, "-q", ok=True)
    assert {i.split("@")[0] for i in judge_ids(db)} == {tiny_llama.name}
    assert json.loads(cli("judges", "list", "--db", db, "--json").stdout) == []


def test_retrain_starts_from_judge_or_model_not_both(tmp_path, tiny_llama, cli):
    result = cli("retrain", "--db", tmp_path / "l.duckdb", "--judge", "base", "--model", tiny_llama)
    assert result.exit_code == 1 and "--judge and --model both choose where training starts" in result.output


def test_a_probe_starter_judges_by_reward_and_training_starts_from_its_base(tmp_path, tiny_llama, monkeypatch, cli):
    """The starter as shipped: a bt-probe head, judged by the reward backend (direct only), calibrated."""
    from starter_fixture import ship_tiny_probe_starter

    shipped = ship_tiny_probe_starter(tmp_path, tiny_llama, monkeypatch)
    db = tmp_path / "l.duckdb"
    cli("annotate", write_pairs(tmp_path / "d.jsonl", 3), "--db", db, "-q", ok=True)
    starter_id = shipped["judge"]["judge_id"]
    assert judge_ids(db) == {starter_id} and starter_id.startswith("labeler-starter-")
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT bool_and(order_consistent) FROM judgments").fetchone()[0]
    with Store(db) as store:
        assert store.calibration(starter_id, "direct", 1).temperature == 2.0
        default, _ = start_point(store)
        assert default.judge_dir == default.base_model == tiny_llama  # generative training starts from the base
    cot = cli("annotate", "--db", db, "--mode", "cot", "-q")
    assert cot.exit_code == 1 and "writes no rationale" in cot.output and "--judge base" in cot.output
    criteria = cli("annotate", "--db", db, "--criteria", "shorter")
    assert criteria.exit_code == 1 and "--template and --criteria need a generative judge (--judge base" in criteria.output
    listed = json.loads(cli("judges", "list", "--db", db, "--json").stdout)
    assert [(v["version"], v["method"], v["weights"], v["active"]) for v in listed] == [
        ("starter", "bt-probe", "head", True)]


def test_retrain_weighs_the_new_judge_against_the_probe_starter_it_would_replace(tmp_path, tiny_llama, monkeypatch,
                                                                                   cli):
    from starter_fixture import ship_tiny_probe_starter

    shipped = ship_tiny_probe_starter(tmp_path, tiny_llama, monkeypatch)
    db = tmp_path / "l.duckdb"
    out = cli("retrain", "--db", db, "--gold", write_pairs(tmp_path / "g.jsonl", 12, labeled=True), "--judge", "base",
              "--method", "bt-probe", "--probe-layers", "1", "--json", "--quiet", ok=True)
    result = json.loads(out.stdout)
    with duckdb.connect(str(db), read_only=True) as con:
        held = con.execute("SELECT count(*) FROM gold_split WHERE split = 'heldout'").fetchone()[0]
        by_starter = con.execute("SELECT count(*) FROM judgments WHERE judge_id = ?",
                                 [shipped["judge"]["judge_id"]]).fetchone()[0]
    assert by_starter == held == result["heldout_n"] >= 1  # the incumbent judged: the starter, not the base
