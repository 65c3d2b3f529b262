"""Ingest: every kind of bad input is quarantined with file, line and field; good rows always land."""

import json
from pathlib import Path

import duckdb
import pytest

from labeler.errors import LabelerError
from labeler.ingestion import ingest_file, ingest_files
from labeler.store import FieldMap, Store


def row(i, **over):
    base = {"id": f"p{i}", "prompt": f"question {i}", "response_a": f"answer a{i}", "response_b": f"answer b{i}"}
    return {**base, **over}


def write_lines(path: Path, lines: list[bytes | str | dict]) -> Path:
    out = b""
    for item in lines:
        if isinstance(item, dict):
            item = json.dumps(item)
        out += (item.encode() if isinstance(item, str) else item) + b"\n"
    path.write_bytes(out)
    return path


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "t.duckdb") as s:
        yield s


def quarantine(store):
    return store.con.execute("SELECT line, field, reason FROM quarantine ORDER BY line").fetchall()


def test_good_rows_and_idempotent(store, tmp_path):
    f = write_lines(tmp_path / "a.jsonl", [row(1), row(2, label="b"), row(3)])
    first = ingest_file(store, f).counts
    assert (first.rows, first.new_pairs, first.gold_labels, first.quarantined) == (3, 3, 1, 0)
    second = ingest_file(store, f).counts
    assert (second.new_pairs, second.already_stored, second.gold_labels) == (0, 3, 0)
    assert store.count("pairs") == 3
    assert store.con.execute("SELECT pair_id, label, annotator FROM gold_labels").fetchall() == [("p2", "B", "file")]
    assert store.count("judgments") == 0  # gold labels never become model labels


def test_bad_rows_are_quarantined_with_line_and_field(store, tmp_path):
    f = write_lines(tmp_path / "bad.jsonl", [
        row(1),                                           # 1 ok
        "{not json",                                      # 2 invalid JSON
        {k: v for k, v in row(3).items() if k != "prompt"},  # 3 missing field
        row(4, response_a="   "),                         # 4 empty
        row(5, response_b=7),                             # 5 wrong type
        row(6, prompt=None),                              # 6 null
        "[1, 2]",                                         # 7 not an object
        row(8, prompt="nul \u0000 inside"),               # 8 escaped NUL byte
        b'{"id": "p9", "prompt": "raw \x00 nul", "response_a": "a", "response_b": "b"}',  # 9 raw NUL
        b'{"id": "p10", "prompt": "caf\xe9", "response_a": "a", "response_b": "b"}',      # 10 invalid UTF-8
        row(11, label="C"),                               # 11 bad label
        row(12, id=1.5),                                  # 12 bad id type
        row(13),                                          # 13 ok
    ])
    counts = ingest_file(store, f).counts
    assert counts.new_pairs == 2 and counts.quarantined == 11
    got = {line: (field, reason) for line, field, reason in quarantine(store)}
    assert got[2] == (None, "invalid JSON")
    assert got[3] == ("prompt", "missing field")
    assert got[4] == ("response_a", "is empty")
    assert got[5] == ("response_b", "must be a string, got ubigint")
    assert got[6] == ("prompt", "is null")
    assert got[7] == (None, "not a JSON object")
    assert got[8] == ("prompt", "contains a NUL byte")
    assert got[9] == (None, "invalid JSON")
    assert got[10] == (None, "invalid UTF-8")
    assert got[11] == ("label", "must be \"A\", \"B\" or \"tie\", got \"C\"")
    assert got[12] == ("id", "must be a string or integer, got double")
    assert store.con.execute("SELECT pair_id, source_line FROM pairs ORDER BY 2").fetchall() == [("p1", 1), ("p13", 13)]
    ingest_file(store, f)  # again: no duplicate quarantine rows
    assert len(quarantine(store)) == 11


def test_line_numbers_stay_physical_after_rejected_lines(store, tmp_path):
    lines = [row(1), b'{"id": "x", "prompt": "\xff\xfe"}', "", row(4), b"\xc3(", "", row(7)]
    ingest_file(store, write_lines(tmp_path / "n.jsonl", lines))
    assert store.con.execute("SELECT pair_id, source_line FROM pairs ORDER BY 2").fetchall() == [
        ("p1", 1), ("p4", 4), ("p7", 7)]
    assert [q[0] for q in quarantine(store)] == [2, 5]


def test_bom_crlf_blank_lines_and_unknown_fields(store, tmp_path):
    f = tmp_path / "crlf.jsonl"
    body = "\r\n".join([json.dumps(row(1, source="web", category="chat", extra_note={"k": 1})), "", json.dumps(row(2))])
    f.write_bytes(b"\xef\xbb\xbf" + body.encode() + b"\r\n")
    counts = ingest_file(store, f).counts
    assert (counts.new_pairs, counts.quarantined, counts.blank_lines) == (2, 0, 1)
    source, category, extra = store.con.execute("SELECT source, category, extra FROM pairs WHERE pair_id='p1'").fetchone()
    assert (source, category) == ("web", "chat")
    assert json.loads(extra) == {"source": "web", "category": "chat", "extra_note": {"k": 1}}
    assert store.con.execute("SELECT prompt FROM pairs WHERE pair_id='p2'").fetchone()[0] == "question 2"


def test_whitespace_only_fields_are_empty_and_whitespace_only_lines_blank(store, tmp_path):
    f = write_lines(tmp_path / "ws.jsonl", [row(1), "\t", "  \t ", row(2, prompt="\t\n"), row(3, response_b=" \r\n "),
                                           row(4, id="\t")])
    counts = ingest_file(store, f).counts
    assert (counts.new_pairs, counts.quarantined, counts.blank_lines) == (1, 3, 2)
    assert quarantine(store) == [(4, "prompt", "is empty"), (5, "response_b", "is empty"), (6, "id", "is empty")]


def test_ten_megabyte_field_is_quarantined_not_fatal(store, tmp_path):
    big = "x" * (10 * 1024 * 1024)
    counts = ingest_file(store, write_lines(tmp_path / "big.jsonl", [row(1, prompt=big), row(2)])).counts
    assert (counts.new_pairs, counts.quarantined) == (1, 1)
    (line, field, reason), = quarantine(store)
    assert (line, field) == (1, "prompt") and reason.startswith("too long: 10485760 characters")
    raw_len = store.con.execute("SELECT length(raw) FROM quarantine").fetchone()[0]
    assert raw_len == 2000  # the quarantine keeps a prefix, not the 10 MB


def test_duplicate_ids_with_different_content(store, tmp_path):
    f = write_lines(tmp_path / "d.jsonl", [row(1), row(1), row(1, response_b="changed")])
    counts = ingest_file(store, f).counts
    assert (counts.new_pairs, counts.repeated_in_file, counts.quarantined) == (1, 1, 1)
    assert quarantine(store)[0][2] == "duplicate id with different content (first seen at line 1)"
    g = write_lines(tmp_path / "e.jsonl", [row(1, prompt="other prompt")])
    ingest_file(store, g)
    reason = store.con.execute("SELECT reason FROM quarantine WHERE file LIKE '%e.jsonl'").fetchone()[0]
    assert reason.startswith("id already stored with different content (from ") and reason.endswith("d.jsonl:1)")
    assert store.con.execute("SELECT response_b FROM pairs").fetchone()[0] == "answer b1"  # nothing overwritten


def test_missing_ids_get_stable_content_hash(store, tmp_path):
    rows = [{k: v for k, v in row(i).items() if k != "id"} for i in (1, 2)]
    ingest_file(store, write_lines(tmp_path / "h.jsonl", rows))
    ids = [r[0] for r in store.con.execute("SELECT pair_id FROM pairs ORDER BY source_line").fetchall()]
    assert len(ids) == 2 and all(len(i) == 16 for i in ids)
    ingest_file(store, write_lines(tmp_path / "h2.jsonl", rows[::-1]))
    assert store.count("pairs") == 2


def test_integer_ids_and_field_mapping(store, tmp_path):
    f = write_lines(tmp_path / "m.jsonl", [{"uid": 7, "q": "why?", "good": "because", "bad": "no", "pref": "A"}])
    fields = FieldMap(prompt="q", response_a="good", response_b="bad", id="uid", label="pref")
    assert ingest_file(store, f, fields).counts.new_pairs == 1
    assert store.con.execute("SELECT pair_id, prompt FROM pairs").fetchone() == ("7", "why?")
    assert json.loads(store.con.execute("SELECT extra FROM pairs").fetchone()[0]) == {}


def test_strict_stores_nothing(store, tmp_path):
    f = write_lines(tmp_path / "s.jsonl", [row(1), row(2, prompt="")])
    with pytest.raises(LabelerError, match=r"s\.jsonl:2: line 2, field prompt: is empty; nothing stored"):
        ingest_file(store, f, strict=True)
    assert store.count("pairs") == 0 and store.count("quarantine") == 0


def test_file_errors(store, tmp_path):
    with pytest.raises(LabelerError, match="no such file"):
        ingest_file(store, tmp_path / "missing.jsonl")
    with pytest.raises(LabelerError, match="is a directory"):
        ingest_file(store, tmp_path)
    (tmp_path / "x.txt").write_text("a,b\n")
    with pytest.raises(LabelerError, match="unknown file type '.txt'"):
        ingest_file(store, tmp_path / "x.txt")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    report = ingest_file(store, empty)
    assert report.empty and report.counts.rows == 0


def test_missing_file_in_a_list_stores_nothing(store, tmp_path):
    good = write_lines(tmp_path / "g.jsonl", [row(1)])
    with pytest.raises(LabelerError, match="missing.jsonl: no such file"):
        ingest_files(store, [good, tmp_path / "missing.jsonl"])
    assert store.count("pairs") == 0


def test_parquet(store, tmp_path):
    f = tmp_path / "p.parquet"
    con = duckdb.connect()
    con.execute(f"""COPY (SELECT * FROM (VALUES ('q1', 'p1', 'a', 'b', 'A'), ('q2', 'p2', '', 'b', NULL),
                                          ('q3', 'p3', 'a', 'b', NULL)) t(id, prompt, response_a, response_b, label))
                    TO '{f}' (FORMAT parquet)""")
    counts = ingest_file(store, f).counts
    assert (counts.new_pairs, counts.quarantined, counts.gold_labels) == (2, 1, 1)
    assert quarantine(store) == [(2, "response_a", "is empty")]
    con.execute(f"COPY (SELECT 'x' AS prompt) TO '{tmp_path / 'bad.parquet'}' (FORMAT parquet)")
    with pytest.raises(LabelerError, match="missing column"):
        ingest_file(store, tmp_path / "bad.parquet")
    (tmp_path / "corrupt.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(LabelerError, match="corrupt.parquet: cannot read parquet"):
        ingest_file(store, tmp_path / "corrupt.parquet")


def test_duckdb_memory_limit_default_and_from_the_environment(tmp_path, monkeypatch):
    """The limit is what keeps a large ingest's memory flat (it spills to <db>.tmp): see benchmarks/throughput.py."""
    db = tmp_path / "m.duckdb"
    with Store(db) as s:
        assert s.con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == "953.6 MiB"  # 1GB
    monkeypatch.setenv("LABELER_DUCKDB_MEMORY_LIMIT", "700MB")
    with Store(db) as s:
        assert s.con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == "667.5 MiB"
        assert ingest_file(s, write_lines(tmp_path / "a.jsonl", [row(1), row(2)])).counts.new_pairs == 2


def test_rows_a_reader_would_misread_are_quarantined_and_the_file_goes_on(store, tmp_path):
    deep = '{"id": "p2", "prompt": "q", "response_a": "a", "response_b": "b", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    keyed = '{"id": "p3", "prompt": "q3", "response_a": "a", "response_b": "b", "x": ' + '{"k": ' * 70 + "1" + "}" * 70 + "}"
    shallow = row(8, x=json.loads('{"k": ' * 60 + "1" + "}" * 60))
    f = write_lines(tmp_path / "probe.jsonl", [
        row(1),
        deep,                                                                                  # 2
        keyed,                                                                                 # 3
        '{"id": "p4", "prompt": "first", "prompt": "second", "response_a": "a", "response_b": "b"}',  # 4
        row(5, response_b="answer a5"),                                                        # 5 same as response_a
        row(6, notes="n" * 1000),                                                              # 6 extra too large
        row(7),
        shallow,                                                                               # 8 deep but allowed
    ])
    counts = ingest_files(store, [f], max_chars=600)[0].counts
    assert (counts.new_pairs, counts.quarantined) == (3, 5)
    assert quarantine(store) == [
        (2, None, "nested deeper than 64 levels"),
        (3, None, "nested deeper than 64 levels"),
        (4, "prompt", "duplicate key (JSON readers disagree on which value counts: Python keeps the last, DuckDB the "
                      "first)"),
        (5, "response_b", "identical to the other response"),
        (6, None, "extra fields too large: 1065 characters (limit 600)"),
    ]


def test_non_regular_files_and_binary_or_clashing_parquet_columns(store, tmp_path):
    import os

    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(LabelerError, match="pipe.jsonl: not a regular file"):
        ingest_file(store, fifo)
    loop = tmp_path / "loop.jsonl"
    loop.symlink_to(loop)
    with pytest.raises(LabelerError, match="loop.jsonl: symbolic link loop"):
        ingest_file(store, loop)
    con = duckdb.connect()
    blob = tmp_path / "blob.parquet"
    con.execute(f"COPY (SELECT 'q'::BLOB AS prompt, 'a' AS response_a, 'b' AS response_b) TO '{blob}' (FORMAT parquet)")
    with pytest.raises(LabelerError, match="blob.parquet: column prompt is binary"):
        ingest_file(store, blob)
    clash = tmp_path / "clash.parquet"
    con.execute(f"COPY (SELECT 'q' AS prompt, 'a' AS response_a, 'b' AS response_b, 7 AS file_row_number) "
                f"TO '{clash}' (FORMAT parquet)")
    assert ingest_file(store, clash).counts.new_pairs == 1
    extra = store.con.execute("SELECT extra FROM pairs WHERE prompt = 'q'").fetchone()[0]
    assert json.loads(extra) == {"file_row_number": 7}  # the user's column, kept; not the reader's row number
