"""`labeler export`: provenance and extra fields kept, --columns, the format from the file name, TRL rows plain or
conversational, `datasets` folders (fake backend; the TRL training round trip is tests/test_export_trl.py)."""

import json

import datasets
import duckdb
import pytest

from helpers import run
from schemas import DpoRow, ExportRow

datasets.disable_progress_bars()

CONVERSATION = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Capital of France?"}]


def plain_rows(n: int = 4) -> list[dict]:
    return [{"id": f"p{i}", "prompt": f"What is {i} + {i}?", "response_a": f"It is {2 * i}.",
             "response_b": f"It is {2 * i + 1}.", "source": "arith", "category": "math", "subcategory": "sums",
             "difficulty": i} for i in range(n)]


@pytest.fixture
def plain_db(tmp_path):
    f = tmp_path / "plain.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in plain_rows()))
    db = tmp_path / "plain.duckdb"
    run("annotate", f, "--db", db, "--backend", "fake", ok=True)
    return db


@pytest.fixture
def conv_db(tmp_path, plain_db):
    rows = [{"prompt": CONVERSATION, "chosen": [{"role": "assistant", "content": "Paris."}],
             "rejected": [{"role": "assistant", "content": "Lyon."}]}]
    datasets.Dataset.from_list(rows).to_json(tmp_path / "conv.jsonl")
    run("ingest", tmp_path / "conv.jsonl", "--db", plain_db, ok=True)
    return plain_db


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_plain_export_keeps_provenance_source_category_and_extra_fields(plain_db, tmp_path):
    con = duckdb.connect(str(plain_db))
    con.execute("INSERT INTO judges VALUES ('v007-bt', 'bt', NULL, 'base', 'base', '/x', 'lora', 'fake', 'direct', 1,"
                " 'fake:default', 0, NULL, NULL, true, true, now(), NULL)")
    con.close()
    out = tmp_path / "labels.jsonl"
    run("export", "--db", plain_db, "--out", out, ok=True)
    rows = [ExportRow.model_validate(r) for r in read_jsonl(out)]
    assert [r.pair_id for r in rows] == ["p0", "p1", "p2", "p3"]
    for i, r in enumerate(rows):
        assert (r.label_source, r.judge_id, r.judge_version, r.source, r.category) == (
            "model", "fake:default", "v007-bt", "arith", "math")
        assert r.confidence is not None and r.votes_a + r.votes_b == 2 and r.prompt_messages is None
        assert (r.model_extra["subcategory"], r.model_extra["difficulty"]) == ("sums", i)  # the input's own fields


def test_columns_choose_what_is_written_and_an_unknown_one_is_an_error(plain_db, tmp_path):
    out = tmp_path / "few.jsonl"
    run("export", "--db", plain_db, "--out", out, "--columns", "pair_id,label,confidence,difficulty", ok=True)
    assert [list(r) for r in read_jsonl(out)] == [["pair_id", "label", "confidence", "difficulty"]] * 4
    bad = run("export", "--db", plain_db, "--out", out, "--columns", "pair_id,colour")
    assert bad.exit_code == 1 and bad.stderr.startswith("Error: --columns: no column 'colour' (columns: pair_id, ")
    dpo = tmp_path / "dpo.jsonl"
    run("export", "--db", plain_db, "--out", dpo, "--dpo", "--columns", "pair_id,source", ok=True)
    assert list(read_jsonl(dpo)[0]) == ["prompt", "chosen", "rejected", "pair_id", "source"]


def test_the_format_follows_the_file_name_unless_given(plain_db, tmp_path):
    run("export", "--db", plain_db, "--out", tmp_path / "x.parquet", ok=True)
    rows = duckdb.connect().execute(f"SELECT pair_id, difficulty FROM read_parquet('{tmp_path / 'x.parquet'}')")
    assert rows.fetchall() == [("p0", 0), ("p1", 1), ("p2", 2), ("p3", 3)]
    run("export", "--db", plain_db, "--out", tmp_path / "x.parquet", "--format", "jsonl", ok=True)
    assert read_jsonl(tmp_path / "x.parquet")[0]["pair_id"] == "p0"
    assert run("export", "--db", plain_db, "--out", tmp_path / "x.csv", "--format", "csv").exit_code == 2
    nothing = run("export", "--db", plain_db)
    assert nothing.exit_code == 1 and "nothing to write: pass --out FILE and/or --hf DIR" in nothing.stderr


def test_dpo_rows_are_plain_strings_for_plain_input(plain_db, tmp_path):
    out = tmp_path / "dpo.jsonl"
    run("export", "--db", plain_db, "--out", out, "--dpo", ok=True)
    rows = [DpoRow.model_validate(r) for r in read_jsonl(out)]
    assert all(isinstance(r.prompt, str) and isinstance(r.chosen, str) for r in rows) and len(rows) == 4


def test_dpo_rows_are_conversational_when_the_input_was(conv_db, tmp_path):
    from trl.data_utils import is_conversational

    out = tmp_path / "dpo.jsonl"
    run("export", "--db", conv_db, "--out", out, "--dpo", ok=True)
    rows = read_jsonl(out)
    assert len(rows) == 5 and all(is_conversational(r) for r in rows)
    conv = next(r for r in rows if r["prompt"] == CONVERSATION)
    assert (conv["chosen"], conv["rejected"]) == ([{"role": "assistant", "content": "Paris."}],
                                                  [{"role": "assistant", "content": "Lyon."}])
    plain = next(r for r in rows if r["prompt"][0]["content"] == "What is 1 + 1?")
    assert plain["prompt"] == [{"role": "user", "content": "What is 1 + 1?"}]  # one type per column
    run("export", "--db", conv_db, "--out", tmp_path / "full.jsonl", ok=True)
    conv_row = next(r for r in read_jsonl(tmp_path / "full.jsonl") if r["prompt_messages"])
    assert conv_row["prompt_messages"] == CONVERSATION and conv_row["prompt"].startswith("[System]\nAnswer briefly.")
    assert (conv_row["label_source"], conv_row["label"] in ("A", "B")) == ("human", True)


def test_hf_folder_is_what_load_from_disk_reads_and_is_replaced_on_export(conv_db, tmp_path):
    folder = tmp_path / "prefs"
    result = run("export", "--db", conv_db, "--hf", folder, "--dpo", ok=True)
    assert f"wrote 5 rows to {folder}" in result.output
    ds = datasets.load_from_disk(str(folder))
    assert ds.column_names == ["prompt", "chosen", "rejected"] and ds.num_rows == 5
    run("export", "--db", conv_db, "--hf", folder, "--columns", "pair_id,label", ok=True)
    assert datasets.load_from_disk(str(folder)).column_names == ["pair_id", "label"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".prefs")) == []
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    refused = run("export", "--db", conv_db, "--hf", tmp_path / "notes")
    assert refused.exit_code == 1 and "exists and is not a folder an export wrote" in refused.stderr
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"
