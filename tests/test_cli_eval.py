"""`labeler eval` and `labeler calibrate` end to end: fake backend for the plumbing, tiny Llama for the real path."""

import json
import math

import duckdb
import pytest

from helpers import run, write_pairs
from labeler.evaluation.calibration import calibrated_confidence, score
from labeler.evaluation.metrics import majority_at_k
from labeler.store import Store
from schemas import EvalMetrics, ExportRow

PNG = b"\x89PNG\r\n\x1a\n"


def write_gold(path, n, source="src", start=0):
    """Labelled pairs, labels alternating A/B, two categories, a subcategory in some rows."""
    with path.open("w") as f:
        for i in range(start, start + n):
            row = {"id": f"{source}-{i}", "prompt": f"Question {i}?", "response_a": f"Answer {i} one.",
                   "response_b": f"Answer {i} two.", "label": "AB"[i % 2], "source": source,
                   "category": "chat" if i % 3 else "safety"}
            if i % 2:
                row["subcategory"] = "odd"
            f.write(json.dumps(row) + "\n")
    return path


def table_count(db, table):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        con.close()


def test_eval_writes_metrics_plots_and_report_then_reuses_judgments(tmp_path):
    data, db, out = write_gold(tmp_path / "gold.jsonl", 12), tmp_path / "l.duckdb", tmp_path / "out"
    result = run("eval", data, "--db", db, "--backend", "fake", "--mode", "cot", "-k", "3", "--out", out)
    assert result.exit_code == 0, result.output
    assert "Agreement with people" in result.output and "Judged 12 pairs, reused 0" in result.output
    metrics = EvalMetrics.model_validate_json((out / "metrics.json").read_text())
    assert metrics.n == 12 and metrics.mode == "cot" and metrics.samples == 3 and metrics.judge_id == "fake:default"
    assert [p.k for p in metrics.maj_at_k] == [1, 2, 3] and metrics.maj_at_k[-1].accuracy == metrics.accuracy
    assert set(metrics.by_source) == {"src"} and set(metrics.by_category) == {"chat", "safety"}
    assert metrics.by_subcategory["src/odd"].n == 6
    for name in ("reliability", "coverage", "maj_at_k", "groups"):
        png = (out / f"{name}.png").read_bytes()
        assert png.startswith(PNG) and len(png) > 2000
    report = (out / "report.md").read_text()
    assert all(f"({name}.png)" in report for name in ("reliability", "coverage", "maj_at_k", "groups"))
    again = run("eval", data, "--db", db, "--backend", "fake", "--mode", "cot", "-k", "3")
    assert again.exit_code == 0 and "Judged 0 pairs, reused 12" in again.output
    assert table_count(db, "judgments") == 12 and table_count(db, "runs") == 1


def test_eval_judges_only_the_files_pairs_limit_per_file(tmp_path):
    db = tmp_path / "l.duckdb"
    assert run("ingest", write_pairs(tmp_path / "unlabelled.jsonl", 5), "--db", db).exit_code == 0
    one, two = write_gold(tmp_path / "one.jsonl", 6, "one"), write_gold(tmp_path / "two.jsonl", 6, "two")
    result = run("eval", one, two, "--db", db, "--backend", "fake", "--per-file", "2", "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    metrics = EvalMetrics.model_validate_json((tmp_path / "o" / "metrics.json").read_text())
    assert metrics.n == 4 and {k: g.n for k, g in metrics.by_source.items()} == {"one": 2, "two": 2}
    assert table_count(db, "judgments") == 4  # the unlabelled pairs and the rest of the files wait
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT command FROM runs").fetchall() == [("eval",)]


def test_eval_maj_at_k_reads_the_stored_samples(tmp_path):
    data, db = write_gold(tmp_path / "gold.jsonl", 8), tmp_path / "l.duckdb"
    assert run("eval", data, "--db", db, "--backend", "fake", "--mode", "cot", "-k", "4",
               "--out", tmp_path / "o").exit_code == 0
    metrics = EvalMetrics.model_validate_json((tmp_path / "o" / "metrics.json").read_text())
    with Store(db) as store:
        ids = [f"src-{i}" for i in range(8)]
        rows, samples = store.eval_rows(metrics.judge_key, ids), store.eval_samples(metrics.judge_key, ids)
    assert len(samples) == 8 * 2 * 4 and [r.pair_id for r in rows] == ids
    assert [r.human for r in rows] == list("ABABABAB")
    assert metrics.maj_at_k == majority_at_k(rows, samples)


def test_eval_errors(tmp_path):
    db = tmp_path / "l.duckdb"
    unlabelled = run("eval", write_pairs(tmp_path / "u.jsonl", 3), "--db", db, "--backend", "fake")
    assert unlabelled.exit_code == 1 and "no human-labelled pairs" in unlabelled.stderr
    missing = run("eval", tmp_path / "nope.jsonl", "--db", db, "--backend", "fake")
    assert missing.exit_code == 1 and missing.stderr.strip() == f"Error: {tmp_path / 'nope.jsonl'}: no such file"
    bad = run("eval", write_gold(tmp_path / "g.jsonl", 2), "--db", db, "--backend", "fake", "--coverage", "0")
    assert bad.exit_code == 2 and "coverage" in bad.output
    version = run("eval", tmp_path / "g.jsonl", "--db", db, "--judge", "nope")  # resolved as annotate does
    assert version.exit_code == 1 and "nope" in version.stderr


@pytest.mark.parametrize("mode", [["--mode", "direct"], ["--mode", "cot", "-k", "3"]], ids=["direct", "cot"])
def test_calibrate_applies_to_export_and_clear_restores(tmp_path, mode):
    db, k = tmp_path / "l.duckdb", 3 if "cot" in mode else 1
    assert run("eval", write_gold(tmp_path / "g.jsonl", 30), "--db", db, "--backend", "fake", *mode).exit_code == 0
    too_few = run("calibrate", "--db", db, "--backend", "fake", *mode, "--min-pairs", "31")
    assert too_few.exit_code == 1 and "needs at least 31" in too_few.stderr
    result = run("calibrate", "--db", db, "--backend", "fake", *mode, "--force")  # the fake has no real signal
    assert result.exit_code == 0 and "Stored temperature" in result.output
    with Store(db) as store:
        record = store.calibration("fake:default", mode[1], k)
        assert record is not None and record.n_pairs == 30 and record.temperature > 0
        exported = {r.pair_id: r for r in store.export_rows()}
        judged = store.eval_rows(exported[next(iter(exported))].judge_key, list(exported))
    for r in judged:  # the SQL formula equals the Python one
        want = calibrated_confidence(score(r.mode, r.p_a, r.votes_a, r.votes_b), record.temperature, r.confidence,
                                     r.label is not None)
        assert math.isclose(exported[r.pair_id].model_confidence, want, rel_tol=1e-9)
    judged = {r.pair_id: (r.p_a, r.confidence) for r in judged}
    out = tmp_path / "o"
    assert run("eval", tmp_path / "g.jsonl", "--db", db, "--backend", "fake", *mode, "--out", out).exit_code == 0
    metrics = EvalMetrics.model_validate_json((out / "metrics.json").read_text())
    assert metrics.calibration.stored_temperature == pytest.approx(record.temperature)
    assert metrics.coverage.confidence == "calibrated"
    assert run("calibrate", "--db", db, "--backend", "fake", *mode, "--clear").exit_code == 0
    with Store(db) as store:
        rows = store.export_rows()
        assert store.calibration("fake:default", mode[1], k) is None
    assert all(isinstance(r, ExportRow) and r.model_confidence == judged[r.pair_id][1] for r in rows)
    assert all(r.label_source == "human" and r.confidence is None for r in rows)  # the human's label has no such number


def test_eval_tiny_llama_end_to_end(tmp_path, tiny_llama):
    data, db, out = write_gold(tmp_path / "g.jsonl", 4), tmp_path / "l.duckdb", tmp_path / "out"
    direct = run("eval", data, "--db", db, "--model", tiny_llama, "--out", out, "--quiet")
    assert direct.exit_code == 0, direct.output
    metrics = EvalMetrics.model_validate_json((out / "metrics.json").read_text())
    assert metrics.n == 4 and metrics.undecided == 0 and metrics.ece is not None
    assert metrics.judge_id.startswith(tiny_llama.name) and (out / "reliability.png").stat().st_size > 2000
    cot = run("eval", data, "--db", db, "--model", tiny_llama, "--mode", "cot", "-k", "2", "--max-new-tokens", "6",
              "--out", out / "cot", "--quiet")
    assert cot.exit_code == 0, cot.output
    metrics = EvalMetrics.model_validate_json((out / "cot" / "metrics.json").read_text())
    assert metrics.n == 4 and [p.votes for p in metrics.maj_at_k] == [2, 4]


def test_review_routing_reads_calibrated_confidence(tmp_path):
    db = tmp_path / "l.duckdb"
    assert run("eval", write_gold(tmp_path / "g.jsonl", 24), "--db", db, "--backend", "fake").exit_code == 0
    assert run("annotate", write_pairs(tmp_path / "u.jsonl", 5), "--db", db, "--backend", "fake").exit_code == 0
    assert run("calibrate", "--db", db, "--backend", "fake").exit_code == 0
    with Store(db) as store:
        temperature = store.calibration("fake:default", "direct", 1).temperature
        candidates = store.review_candidates("ds")
        raw = {r[0]: r for r in store.con.execute("SELECT pair_id, p_a, confidence FROM judgments").fetchall()}
    assert len(candidates) == 5  # the unlabelled pairs only
    for c in candidates:
        _, p_a, confidence = raw[c.pair_id]
        assert c.confidence == pytest.approx(calibrated_confidence(score("direct", p_a, 0, 0), temperature, confidence))
        assert c.confidence != pytest.approx(confidence)


def test_calibrate_refuses_a_fit_on_its_bound_unless_forced(tmp_path):
    first = tmp_path / "first.duckdb"
    assert run("eval", write_gold(tmp_path / "g.jsonl", 30), "--db", first, "--backend", "fake").exit_code == 0
    with duckdb.connect(str(first), read_only=True) as con:
        said = dict(con.execute("SELECT pair_id, label FROM judgments").fetchall())
    wrong = tmp_path / "wrong.jsonl"  # the same pairs, every human label against the judge's
    rows = [json.loads(line) for line in (tmp_path / "g.jsonl").read_text().splitlines()]
    wrong.write_text("".join(json.dumps({**r, "label": "B" if said[r["id"]] == "A" else "A"}) + "\n" for r in rows))
    db = tmp_path / "l.duckdb"
    assert run("eval", wrong, "--db", db, "--backend", "fake").exit_code == 0
    refused = run("calibrate", "--db", db, "--backend", "fake")
    assert refused.exit_code == 1 and "hit its bound T = 1000 on 30 pairs (agreement 0.0%)" in refused.stderr
    with Store(db) as store:
        assert store.calibration("fake:default", "direct", 1) is None
    assert run("calibrate", "--db", db, "--backend", "fake", "--force").exit_code == 0
    with Store(db) as store:
        assert store.calibration("fake:default", "direct", 1).temperature == 1000
