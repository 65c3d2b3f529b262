"""Options the docs show that no other test passes through the command line: each runs here (tests/test_docs_examples.py
checks that every option of every docs example runs in some test)."""

import json

import duckdb

from helpers import run, write_pairs


def test_ingest_renames_fields(tmp_path):
    data = tmp_path / "renamed.jsonl"
    data.write_text(json.dumps({"uid": "u1", "question": "What is 2 + 2?", "first": "4", "second": "5",
                                "pref": "A"}) + "\n")
    db = tmp_path / "l.duckdb"
    run("ingest", data, "--db", db, "--prompt-field", "question", "--a-field", "first", "--b-field", "second",
        "--id-field", "uid", "--label-field", "pref", ok=True)
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT pair_id, prompt, response_a, response_b FROM pairs").fetchall() == [
        ("u1", "What is 2 + 2?", "4", "5")]
    assert con.execute("SELECT pair_id, label FROM gold_labels").fetchall() == [("u1", "A")]
    con.close()


def test_retrain_reads_its_training_options_and_config_before_any_work(tmp_path):
    config = tmp_path / "retrain.yaml"
    config.write_text("train:\n  max_steps: 5\n  no_such_knob: 1\n")
    db = tmp_path / "l.duckdb"
    options = ["--method", "genrm-sft", "--epochs", "2", "--learning-rate", "1e-4", "--full", "--heldout-fraction",
               "0.05", "--max-steps", "200"]
    bad = run("retrain", "--db", db, *options, "--config", config)
    assert bad.exit_code == 2 and "no_such_knob" in bad.output  # the YAML was read, and refused
    assert not db.exists()
    config.write_text("train:\n  max_steps: 5\n")
    good = run("retrain", "--db", db, *options, "--config", config)
    assert good.exit_code == 1 and "retrain needs gold labels" in good.stderr  # the plan was accepted


def test_calibrate_names_the_judge_it_cannot_find(tmp_path):
    db = tmp_path / "l.duckdb"
    run("annotate", write_pairs(tmp_path / "d.jsonl", 2), "--db", db, "--backend", "fake", "-q", ok=True)
    result = run("calibrate", "--db", db, "--judge", "v009-nope", "--mode", "cot", "--samples", "4")
    assert result.exit_code == 1 and "v009-nope" in result.stderr


def test_review_push_with_a_limit_stops_at_an_unreachable_server_in_one_line(tmp_path):
    db = tmp_path / "l.duckdb"
    run("annotate", write_pairs(tmp_path / "d.jsonl", 2), "--db", db, "--backend", "fake", "-q", ok=True)
    result = run("review", "push", "--db", db, "--limit", "1", "--url", "http://127.0.0.1:9", "--api-key", "k")
    assert result.exit_code == 1 and result.stderr.startswith("Error: cannot reach Argilla at http://127.0.0.1:9")


def test_ray_resources_per_actor_are_checked_before_any_work(tmp_path):
    db = tmp_path / "l.duckdb"
    result = run("annotate", write_pairs(tmp_path / "d.jsonl", 2), "--db", db, "--backend", "fake", "--ray", "local",
                 "--actors", "2", "--num-cpus-per-actor", "0")
    assert result.exit_code == 2 and "--num-cpus-per-actor > 0" in result.output
    assert not db.exists()
