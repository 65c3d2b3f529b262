"""`labeler annotate` end to end on the fake backend (the real backends have their own tests)."""

import json
import os
import signal
import subprocess
import sys
import time

import duckdb
import pytest

from helpers import run, write_pairs



def counts(db):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("pairs", "judgments", "samples")}
    finally:
        con.close()


def test_annotate_cot_then_rerun_adds_nothing(tmp_path):
    data, db = write_pairs(tmp_path / "d.jsonl", 10), tmp_path / "l.duckdb"
    result = run("annotate", data, "--db", db, "--backend", "fake", "--mode", "cot", "-k", "3", "--batch-size", "4")
    assert result.exit_code == 0, result.output
    assert "Annotated 10 pairs" in result.output
    assert counts(db) == {"pairs": 10, "judgments": 10, "samples": 10 * 2 * 3}
    again = run("annotate", data, "--db", db, "--backend", "fake", "--mode", "cot", "-k", "3")
    assert again.exit_code == 0 and "Nothing to judge" in again.output
    assert counts(db) == {"pairs": 10, "judgments": 10, "samples": 60}


def test_samples_are_stored_in_original_orientation(tmp_path):
    data, db = write_pairs(tmp_path / "d.jsonl", 6), tmp_path / "l.duckdb"
    assert run("annotate", data, "--db", db, "--backend", "fake", "--mode", "cot", "-k", "4").exit_code == 0
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("""SELECT j.pair_id, j.votes_a, j.votes_b, j.abstained,
                                 count_if(s.verdict = 'A'), count_if(s.verdict = 'B'), count_if(s.verdict IS NULL)
                          FROM judgments j JOIN samples s USING (pair_id, judge_key) GROUP BY ALL""").fetchall()
    for _, va, vb, ab, sa, sb, sn in rows:
        assert (va, vb, ab) == (sa, sb, sn)
    text, verdict, position = con.execute(
        "SELECT text, verdict, position FROM samples WHERE position = 'BA' AND verdict IS NOT NULL LIMIT 1").fetchone()
    shown = text.rstrip()[-3]  # "...[[X]]"
    assert verdict == {"A": "B", "B": "A"}[shown]


def test_direct_mode_and_new_config_gets_new_labels(tmp_path):
    data, db = write_pairs(tmp_path / "d.jsonl", 5), tmp_path / "l.duckdb"
    assert run("annotate", data, "--db", db, "--backend", "fake").exit_code == 0
    assert counts(db)["samples"] == 10  # one verdict read per order
    assert run("annotate", "--db", db, "--backend", "fake", "--mode", "cot", "--limit", "2").exit_code == 0
    assert counts(db)["judgments"] == 7


def test_a_db_that_is_not_a_duckdb_file_is_refused_and_left_untouched(tmp_path):
    data = write_pairs(tmp_path / "d.jsonl", 2)
    victim = write_pairs(tmp_path / "victim.jsonl", 3)
    before = victim.read_bytes()
    result = run("annotate", data, "--backend", "fake", "--db", victim)
    assert result.exit_code == 1 and victim.read_bytes() == before
    assert result.stderr.strip() == f"Error: {victim}: exists and is not a DuckDB database; pass --db a new or a " \
                                    "labeler .duckdb file"
    empty = tmp_path / "empty.duckdb"
    empty.touch()  # DuckDB refuses an empty file too
    assert run("annotate", data, "--backend", "fake", "--db", empty).exit_code == 1 and empty.stat().st_size == 0
    assert run("annotate", data, "--backend", "fake", "--db", tmp_path / "new.duckdb").exit_code == 0


def test_the_ingest_summary_is_shown_before_judging_starts(tmp_path, monkeypatch):
    from helpers import runner
    from labeler.cli import app
    from labeler.judge.judge import Judge

    def fail(self, pairs, run_id, progress=None):
        raise RuntimeError("judging started")

    monkeypatch.setattr(Judge, "judge", fail)
    data = write_pairs(tmp_path / "d.jsonl", 2)
    result = runner.invoke(app, ["annotate", str(data), "--db", str(tmp_path / "l.duckdb"), "--backend", "fake"])
    assert isinstance(result.exception, RuntimeError) and "Ingest" in result.output and "quarantined" in result.output


def test_an_empty_store_says_so(tmp_path):
    result = run("annotate", "--db", tmp_path / "empty.duckdb", "--backend", "fake")
    assert result.exit_code == 0 and "Nothing to judge: the store has no pairs" in result.output


def test_usage_and_user_errors(tmp_path):
    db = tmp_path / "l.duckdb"
    bad_k = run("annotate", "--db", db, "--backend", "fake", "--samples", "4")
    assert bad_k.exit_code == 2 and "samples must be 1" in bad_k.output
    missing = run("annotate", tmp_path / "nope.jsonl", "--db", db, "--backend", "fake")
    assert missing.exit_code == 1
    assert missing.stderr.strip() == f"Error: {tmp_path / 'nope.jsonl'}: no such file"
    unknown = run("annotate", "--db", db, "--backend", "nope")
    assert unknown.exit_code == 2 and "Invalid value for '--backend': " in unknown.output
    model = run("annotate", "--db", db, "--model", tmp_path, "--limit", "1")
    assert model.exit_code == 1 and "config.json" in model.stderr


def test_kill_9_mid_run_then_resume_without_duplicates(tmp_path):
    data, db = write_pairs(tmp_path / "d.jsonl", 40), tmp_path / "l.duckdb"
    args = [sys.executable, "-m", "labeler", "annotate", str(data), "--db", str(db), "--backend", "fake",
            "--mode", "cot", "-k", "2", "--batch-size", "2", "--quiet"]
    env = {**os.environ, "LABELER_FAKE_DELAY": "0.15"}
    proc = subprocess.Popen(args, env=env)
    deadline = time.monotonic() + 60  # a loaded machine starts slowly: wait for the first committed batches
    while True:
        status = subprocess.run([sys.executable, "-m", "labeler", "status", "--db", str(db), "--json"],
                                capture_output=True, text=True)
        runs = json.loads(status.stdout)["runs"] if status.returncode == 0 else []
        if (runs and runs[0]["n_done"] >= 4) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status.returncode == 0, status.stderr  # readers get in between batches
    assert runs[0]["status"] == "running" and runs[0]["n_done"] < 40
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = counts(db)
    assert 0 < partial["judgments"] < 40, partial
    assert partial["samples"] == partial["judgments"] * 4  # whole batches only
    done = subprocess.run(args[:-1], env={**os.environ, "LABELER_FAKE_DELAY": "0"}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert counts(db) == {"pairs": 40, "judgments": 40, "samples": 160}
    con = duckdb.connect(str(db), read_only=True)
    assert sorted(r[0] for r in con.execute("SELECT status FROM runs").fetchall()) == ["finished", "interrupted"]
    killed = con.execute("SELECT run_id FROM runs WHERE status = 'interrupted'").fetchone()[0]
    assert f"resuming run {killed}: {partial['judgments']} of 40 done" in done.stdout
    con.close()
    again = subprocess.run(args[:-1], capture_output=True, text=True)
    assert again.returncode == 0 and "resuming" not in again.stdout  # nothing left: nothing resumed


def test_two_concurrent_runs_claim_disjoint_pairs(tmp_path):
    """Two `annotate` processes on one store split the pending pairs: N judge calls in all, not 2N."""
    data, db = write_pairs(tmp_path / "d.jsonl", 30), tmp_path / "l.duckdb"
    assert run("ingest", data, "--db", db).exit_code == 0
    args = [sys.executable, "-m", "labeler", "annotate", "--db", str(db), "--backend", "fake", "--batch-size", "2",
            "--quiet"]
    env = {**os.environ, "LABELER_FAKE_DELAY": "0.1"}
    procs = [subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errors = [p.communicate()[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    con = duckdb.connect(str(db), read_only=True)
    runs = con.execute("SELECT n_done FROM runs WHERE command = 'annotate'").fetchall()
    assert len(runs) == 2 and sum(n for (n,) in runs) == 30 and all(n > 0 for (n,) in runs), runs
    assert con.execute("SELECT count(*), count(DISTINCT pair_id) FROM judgments").fetchone() == (30, 30)
    assert con.execute("SELECT count(*) FROM leases").fetchone() == (0,)  # finished runs hold nothing


def test_a_busy_store_keeps_the_judged_batch_and_retries(capsys):
    from labeler.errors import StoreBusy
    from labeler.pipeline import _save_keeping_the_batch

    class Busy:
        path, saved, tries = "l.duckdb", [], 0

        def save_batch(self, run_id, judgments, samples):
            self.tries += 1
            if self.tries < 3:
                raise StoreBusy("held by another process")
            self.saved.append((run_id, judgments, samples))

    store = Busy()
    _save_keeping_the_batch(store, "r", ["j1", "j2"], ["s"])
    assert store.saved == [("r", ["j1", "j2"], ["s"])] and store.tries == 3
    assert "keeping the 2 judged pairs and waiting again" in capsys.readouterr().err
    store.tries = -100
    with pytest.raises(StoreBusy):  # after its attempts it says so; it never drops the batch silently
        _save_keeping_the_batch(store, "r", ["j"], [], attempts=2)


@pytest.mark.parametrize("option, value, says", [
    ("--samples", "0", "samples must be >= 1"),  # was taken as "not given" and became 4
    ("--temperature", "nan", "temperature > 0"),
    ("--top-p", "inf", "0 < top_p <= 1"),
    ("--max-new-tokens", "0", "max_new_tokens"),
    ("--max-chars", "0", "'--max-chars'"),
    ("--batch-size", "0", "'--batch-size'"),
])
def test_numeric_options_out_of_range_are_usage_errors(tmp_path, option, value, says):
    data, db = write_pairs(tmp_path / "d.jsonl", 2), tmp_path / "l.duckdb"
    result = run("annotate", data, "--db", db, "--backend", "fake", "--mode", "cot", option, value)
    assert result.exit_code == 2 and says in " ".join(result.output.split()), result.output
    if db.exists():  # refused before the files are ingested
        assert duckdb.connect(str(db), read_only=True).execute("SELECT count(*) FROM pairs").fetchone() == (0,)
