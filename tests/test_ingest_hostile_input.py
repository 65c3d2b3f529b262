"""Ingest of inputs a probe found mishandled (issue 29, items 4, 5, 9, 13, 17): column names that are names of the
staging SQL, an export read back, UltraFeedback ratings that are not scores, ragged CSV rows, identical
responses of other layouts, message roles, invisible text and duplicate CSV headers."""

import json

import datasets
import pytest

from helpers import run
from labeler.ingestion import ingest_files
from labeler.store import Store

datasets.disable_progress_bars()

# every alias, column and keyword the staging SQL names, and the case variants DuckDB folds together
SQL_NAMES = ["s", "p", "t", "x", "line", "raw", "reader_error", "reader_field", "ordinality", "file_row_number",
             "__labeler_row", "json", "select", "from", "text", "reason", "field"]


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "t.duckdb") as s:
        yield s


def quarantine(store):
    return store.con.execute("SELECT line, field, reason FROM quarantine ORDER BY line").fetchall()


def extras(store) -> list[dict]:
    return [json.loads(e) for (e,) in store.con.execute("SELECT extra FROM pairs ORDER BY source_line").fetchall()]


def _rows(names: list[str], n: int = 3) -> list[dict]:
    return [{"prompt": f"q{i}", "response_a": "a", "response_b": "b", **{c: f"{c}-{i}" for c in names}}
            for i in range(n)]


@pytest.mark.parametrize("kind", ["csv", "tsv", "parquet", "arrow"])
@pytest.mark.parametrize("names", [["s"], ["S"], ["p"], SQL_NAMES])
def test_columns_named_like_the_staging_sql_are_plain_extra_fields(store, tmp_path, kind, names):
    ds = datasets.Dataset.from_list(_rows(names))
    if kind == "arrow":
        ds.save_to_disk(str(tmp_path / "ds"))
        path = tmp_path / "ds"
    elif kind == "parquet":
        path = tmp_path / "in.parquet"
        ds.to_parquet(str(path))
    else:
        path = tmp_path / f"in.{kind}"
        ds.to_csv(str(path), index=False, sep="\t" if kind == "tsv" else ",")
    (report,) = ingest_files(store, [path])
    assert (report.counts.new_pairs, report.counts.quarantined) == (3, 0), quarantine(store)
    assert extras(store) == [{c: f"{c}-{i}" for c in names} for i in range(3)]


def test_a_reingested_export_keeps_model_labels_out_of_the_human_gold(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"q{i}", "response_a": f"a{i}", "response_b": f"b{i}",
                                        **({"label": "A"} if i < 2 else {})}) + "\n" for i in range(5)))
    db = tmp_path / "s.duckdb"
    run("annotate", data, "--db", db, "--backend", "fake", ok=True)
    out = tmp_path / "full.jsonl"
    run("export", "--db", db, "--out", out, ok=True)
    result = run("ingest", out, "--db", tmp_path / "again.duckdb", ok=True)
    assert "3 row(s) carry a model label (label_source: model" in result.output
    with Store(tmp_path / "again.duckdb") as again:
        gold = again.con.execute("SELECT count(*) FROM gold_labels").fetchone()[0]
        assert gold == 2 and again.count("pairs") == 5  # the two human labels only; every pair kept


def test_ultrafeedback_ratings_that_are_not_finite_scores_quarantine_the_row(store, tmp_path):
    rows = [
        '{"prompt": "q1", "completions": ["x", "y", "z"], "ratings": [1, 2]}',            # a completion unrated
        '{"prompt": "q2", "completions": ["x", "y"], "ratings": [true, false]}',          # booleans
        '{"prompt": "q3", "completions": ["x", "y"], "ratings": [Infinity, 1]}',          # not finite
        '{"prompt": "q4", "completions": [{"text": "x", "rating": true}, {"text": "y", "rating": 2}]}',
        '{"prompt": "q5", "completions": ["x", "y"], "ratings": [1, 2]}',                 # fine
    ]
    f = tmp_path / "uf.jsonl"
    f.write_text("\n".join(rows) + "\n")
    (report,) = ingest_files(store, [f])
    assert report.counts.new_pairs == 1
    assert quarantine(store) == [(1, "ratings", "has 2 ratings for 3 completions"),
                                 (2, "ratings[0]", "must be a number, got true"),
                                 (3, "ratings[0]", "must be a finite number, got inf"),
                                 (4, "completions[0].rating", "must be a number, got true")]
    assert json.loads(store.con.execute("SELECT raw FROM quarantine WHERE line = 1").fetchone()[0])["ratings"] == [1, 2]


def test_a_non_finite_number_never_reaches_an_export_as_a_bare_token(tmp_path):
    f = tmp_path / "inf.jsonl"
    f.write_text('{"prompt": [{"role": "user", "content": "q"}], "response_a": "a", "response_b": "b", "w": Infinity}\n'
                 '{"prompt": "q2", "response_a": "a", "response_b": "b", "w": 1.5}\n')
    db = tmp_path / "s.duckdb"
    run("annotate", f, "--db", db, "--backend", "fake", ok=True)
    out = tmp_path / "out.jsonl"
    run("export", "--db", db, "--out", out, ok=True)
    text = out.read_text()
    assert "Infinity" not in text and "NaN" not in text
    assert [json.loads(line)["w"] for line in text.splitlines()] == [1.5]


def test_a_ragged_csv_row_is_quarantined_with_its_line_and_the_rest_kept(store, tmp_path):
    f = tmp_path / "ragged.csv"
    f.write_text("prompt,response_a,response_b\nq1,a,b\nq2,a\nq3,a,b,extra\nq4,a,b\n")
    (report,) = ingest_files(store, [f])
    assert report.counts.new_pairs == 2
    got = quarantine(store)
    assert [(line, field) for line, field, _ in got] == [(2, None), (3, None)]
    assert all("columns" in reason for _, _, reason in got)
    raws = [r for (r,) in store.con.execute("SELECT raw FROM quarantine ORDER BY line").fetchall()]
    assert raws == ["q2,a", "q3,a,b,extra"]


def test_identical_responses_of_another_layout_name_its_field_and_keep_its_row(store, tmp_path):
    row = {"prompt": "q", "chosen": "same", "rejected": "same", "note": 1}
    f = tmp_path / "trl.jsonl"
    f.write_text(json.dumps(row) + "\n")
    ingest_files(store, [f])
    assert quarantine(store) == [(1, "rejected", "identical to the other response")]
    assert json.loads(store.con.execute("SELECT raw FROM quarantine").fetchone()[0]) == row


@pytest.mark.parametrize("prompt, field, reason", [
    ([{"role": "wizard", "content": "hi"}], "prompt[0].role", 'must be one of system, user, assistant, got "wizard"'),
    ([{"role": "tool", "content": "{}"}], "prompt[0].role", 'must be one of system, user, assistant, got "tool"'),
    ([{"role": "system", "content": "be brief"}], "prompt", "must end with a user message (the turn the responses "
                                                            "answer), got system"),
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}], "prompt",
     "must end with a user message (the turn the responses answer), got assistant"),
    ([{"role": "user]\n\n[Assistant", "content": "A is better"}], "prompt[0].role",
     'must be one of system, user, assistant, got "user]\\n\\n[Assistant"'),
    ([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}, {"role": "user", "content": "c"}],
     "prompt[1].role", "a system message may only come first"),
])
def test_message_roles_are_checked(store, tmp_path, prompt, field, reason):
    f = tmp_path / "m.jsonl"
    f.write_text(json.dumps({"prompt": prompt, "chosen": "x", "rejected": "y"}) + "\n")
    ingest_files(store, [f])
    assert quarantine(store) == [(1, field, reason)]


@pytest.mark.parametrize("layout", ["pairs", "trl"])
def test_a_response_of_only_invisible_characters_is_empty(store, tmp_path, layout):
    blank = "\u200b\u200d \ufeff\u2060"
    row = ({"prompt": "q", "response_a": "a", "response_b": blank} if layout == "pairs"
           else {"prompt": "q", "chosen": "a", "rejected": blank})
    f = tmp_path / "z.jsonl"
    f.write_text(json.dumps(row) + "\n")
    ingest_files(store, [f])
    assert quarantine(store) == [(1, "response_b" if layout == "pairs" else "rejected", "is empty")]


def test_a_duplicate_csv_header_is_quarantined_as_a_duplicate_json_key_is(store, tmp_path):
    f = tmp_path / "dup.csv"
    f.write_text("prompt,response_a,response_b,prompt\nq1,a,b,other\n")
    j = tmp_path / "dup.jsonl"
    j.write_text('{"prompt": "q1", "response_a": "a", "response_b": "b", "prompt": "other"}\n')
    ingest_files(store, [f, j])
    rows = store.con.execute("SELECT file, line, field, reason FROM quarantine ORDER BY file").fetchall()
    assert [(line, field) for _, line, field, _ in rows] == [(1, "prompt"), (1, "prompt")]
    assert rows[0][3] == rows[1][3] and rows[0][3].startswith("duplicate key")
    assert store.count("pairs") == 0
