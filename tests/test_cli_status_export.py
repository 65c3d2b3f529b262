"""`labeler status` and `labeler export` on a store filled through the CLI with the fake backend."""

import json

import duckdb
import pytest

from helpers import run, write_pairs
from schemas import DpoRow, ExportRow, StatusReport



@pytest.fixture
def db(tmp_path):
    db = tmp_path / "l.duckdb"
    assert run("annotate", write_pairs(tmp_path / "d.jsonl", 8), "--db", db, "--backend", "fake",
               "--mode", "cot", "-k", "3").exit_code == 0
    assert run("ingest", write_pairs(tmp_path / "gold.jsonl", 2, labeled=True, start=100), "--db", db).exit_code == 0
    return db


def test_status_json(db):
    result = run("status", "--db", db, "--json")
    assert result.exit_code == 0
    report = StatusReport.model_validate_json(result.stdout)
    assert report.pairs == 10
    assert report.by_state == {"human-labeled": 2, "model-labeled": 8}
    assert sum(report.label_balance.values()) == 8
    assert sum(b["count"] for b in report.confidence_histogram) == 8
    assert report.runs[0].status == "finished" and report.runs[0].n_done == 8


def test_status_table_and_missing_db(db, tmp_path):
    result = run("status", "--db", db)
    assert result.exit_code == 0 and "human-labeled" in result.output and "Recent runs" in result.output
    missing = run("status", "--db", tmp_path / "none.duckdb")
    assert missing.exit_code == 1 and missing.stderr.startswith("Error: ") and "no such database" in missing.stderr


def test_export_jsonl_rows_validate_and_humans_outrank(db, tmp_path):
    assert run("annotate", "--db", db, "--backend", "fake", "--mode", "cot", "-k", "3").exit_code == 0  # gold pairs too
    out = tmp_path / "labels.jsonl"
    result = run("export", "--db", db, "--out", out)
    assert result.exit_code == 0 and "wrote 10 rows" in result.output
    rows = [ExportRow.model_validate(json.loads(line)) for line in out.read_text().splitlines()]
    assert len(rows) == 10
    human = [r for r in rows if r.label_source == "human"]
    assert [r.pair_id for r in human] == ["p100", "p101"] and all(r.label == "A" for r in human)
    for r in human:  # the model's numbers stay in model_* fields; the human label shows none of them
        assert (r.confidence, r.rationale, r.votes_a, r.votes_b, r.labeled_at) == (None,) * 5
        assert r.model_label in ("A", "B") and r.model_confidence is not None and r.model_rationale
    model = [r for r in rows if r.label_source == "model"]
    assert all(r.rationale and r.judge_id == "fake:default" and r.mode == "cot" and r.samples == 3 for r in model)
    assert not list(tmp_path.glob(".*.tmp"))


def test_export_min_confidence_and_parquet(db, tmp_path):
    con = duckdb.connect(str(db), read_only=True)
    confident = con.execute("SELECT count(*) FROM judgments WHERE confidence >= 0.7").fetchone()[0]
    con.close()
    out = tmp_path / "labels.parquet"
    assert run("export", "--db", db, "--out", out, "--format", "parquet", "--min-confidence", "0.7").exit_code == 0
    n = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
    assert n == confident + 2  # human labels are kept whatever the threshold


def test_export_dpo_rows(db, tmp_path):
    out = tmp_path / "dpo.jsonl"
    assert run("export", "--db", db, "--out", out, "--dpo").exit_code == 0
    rows = [DpoRow.model_validate(json.loads(line)) for line in out.read_text().splitlines()]
    gold = next(r for r in rows if r.prompt == "What is 100 + 100?")
    assert (gold.chosen, gold.rejected) == ("It is 200.", "It is 201.")


def test_export_usage_errors(db, tmp_path):
    assert run("export", "--db", db, "--out", tmp_path / "x", "--format", "csv").exit_code == 2
    nodir = run("export", "--db", db, "--out", tmp_path / "no" / "x.jsonl")
    assert nodir.exit_code == 1 and "does not exist" in nodir.stderr
    for bad in ("nan", "inf", "-0.1", "1.5"):
        result = run("export", "--db", db, "--out", tmp_path / "x.jsonl", "--min-confidence", bad)
        assert result.exit_code == 2 and "--min-confidence must be a number in [0, 1]" in result.output
    (tmp_path / "adir").mkdir()
    isdir = run("export", "--db", db, "--out", tmp_path / "adir")
    assert isdir.exit_code == 1 and isdir.stderr.strip() == f"Error: {tmp_path / 'adir'}: is a directory; --out takes a file name"
    assert list((tmp_path / "adir").iterdir()) == [] and not list(tmp_path.glob(".*.tmp"))


def test_a_human_tie_outranks_the_model_label(db, tmp_path):
    con = duckdb.connect(str(db))
    con.execute("INSERT INTO gold_labels (pair_id, label, annotator, origin) VALUES ('p000', 'tie', 'ann', 'test')")
    con.close()
    out = tmp_path / "labels.jsonl"
    assert run("export", "--db", db, "--out", out).exit_code == 0
    rows = {r["pair_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert len(rows) == 10 and (rows["p000"]["label"], rows["p000"]["label_source"]) == ("tie", "human")
    assert rows["p000"]["model_label"] in ("A", "B")  # the model's label stays apart
    dpo = tmp_path / "dpo.jsonl"
    assert run("export", "--db", db, "--out", dpo, "--dpo").exit_code == 0
    assert len(dpo.read_text().splitlines()) == 9  # a tie has no chosen response
    report = StatusReport.model_validate_json(run("status", "--db", db, "--json").stdout)
    assert report.by_state["human-labeled"] == 3 and report.human_labels == {"A": 2, "tie": 1}
    assert "human label tie" in run("status", "--db", db).output


def test_a_damaged_store_is_one_error_line(db, tmp_path):
    damaged = tmp_path / "damaged.duckdb"
    data = bytearray(db.read_bytes())
    data[20000:60000] = bytes(40000)  # zero a stretch of blocks: their checksums no longer match
    damaged.write_bytes(bytes(data))
    result = run("status", "--db", damaged)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert result.stderr.startswith(f"Error: {damaged}: cannot open database: ") and "the file is damaged" in result.stderr


def test_os_and_database_errors_inside_a_command_are_one_error_line(capsys):
    import errno

    import duckdb
    import typer

    from labeler.cli.options import user_errors

    @user_errors
    def full_disk():
        raise OSError(errno.ENOSPC, "No space left on device", "/data/out.jsonl")

    @user_errors
    def database():
        raise duckdb.IOException("IO Error: Could not write file \"x.duckdb\": No space left on device")

    for command, message in ((full_disk, "Error: /data/out.jsonl: No space left on device\n"),
                             (database, 'Error: database error: IO Error: Could not write file "x.duckdb": No space '
                                        "left on device\n")):
        with pytest.raises(typer.Exit):
            command()
        assert capsys.readouterr().err == message


def test_temp_files_of_a_killed_export_and_ingest_are_removed_on_the_next_run(db, tmp_path):
    out = tmp_path / "labels.jsonl"
    stale_export = tmp_path / ".labels.jsonl.tmp"  # what `kill -9` during an export leaves
    stale_export.write_text('{"half": ')
    spill = db.with_name(db.name + ".tmp")  # DuckDB's spill folder of a killed large ingest
    spill.mkdir()
    (spill / "duckdb_temp_storage-0.tmp").write_bytes(b"\0" * 1024)
    assert run("export", "--db", db, "--out", out).exit_code == 0
    assert not stale_export.exists() and not spill.exists() and out.exists()


def test_the_human_verdict_of_several_people(db, tmp_path):
    """A or B needs more votes than each other answer; otherwise any tie vote makes a tie; an even A/B split none."""
    votes = {"p000": "A A tie", "p001": "A tie tie", "p002": "A B tie", "p003": "A B", "p004": "tie B B"}
    con = duckdb.connect(str(db))
    for pid, answers in votes.items():
        for i, label in enumerate(answers.split()):
            con.execute("INSERT INTO gold_labels (pair_id, label, annotator, origin) VALUES (?, ?, ?, 'test')",
                        [pid, label, f"person{i}"])
    con.close()
    out = tmp_path / "labels.jsonl"
    assert run("export", "--db", db, "--out", out).exit_code == 0
    got = {r["pair_id"]: (r["label"], r["label_source"]) for r in map(json.loads, out.read_text().splitlines())}
    assert {pid: got.get(pid) for pid in votes} == {
        "p000": ("A", "human"), "p001": ("tie", "human"), "p002": ("tie", "human"), "p003": None,
        "p004": ("B", "human")}
    report = StatusReport.model_validate_json(run("status", "--db", db, "--json").stdout)
    assert report.human_labels == {"A": 3, "B": 1, "split": 1, "tie": 2}  # with the two gold file labels (A)


def test_a_closed_pipe_is_a_quiet_exit(db):
    """`labeler status --json | head`: the reader left; no `Error: [Errno 32] Broken pipe`, no traceback."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-m", "labeler", "status", "--json", "--db", str(db)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdout.close()  # before the child writes a byte
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) == 141 and err == ""
