"""`labeler export` never loses what is already there: the store, its WAL and the judges folder are refused as
targets, so is anything that exists and is not a regular file; a symbolic link is written through; a folder is
replaced only when an export wrote it; the columns are the real ones (issue 29, items 1-3, 8, 17)."""

import errno
import json
import os

import datasets
import duckdb
import pytest

from helpers import run, write_pairs

datasets.disable_progress_bars()


@pytest.fixture
def db(tmp_path):
    db = tmp_path / "s.duckdb"
    run("annotate", write_pairs(tmp_path / "d.jsonl", 3), "--db", db, "--backend", "fake", ok=True)
    return db


def _pairs(db) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM pairs").fetchone()[0]
    finally:
        con.close()


@pytest.mark.parametrize("option", ["--out", "--hf"])
def test_export_refuses_to_write_over_the_store_itself(db, option, tmp_path):
    result = run("export", "--db", db, option, db)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "would overwrite the store" in result.stderr or "is not a folder" in result.stderr
    assert _pairs(db) == 3  # still the store


def test_export_refuses_the_wal_and_the_judges_folder(db, tmp_path):
    wal = run("export", "--db", db, "--out", db.with_name("s.duckdb.wal"))
    assert wal.exit_code == 1 and "would overwrite the store" in wal.stderr
    judges = tmp_path / "s.judges"
    (judges / "v001-bt").mkdir(parents=True)
    inside = run("export", "--db", db, "--out", judges / "v001-bt" / "adapter.jsonl")
    assert inside.exit_code == 1 and f"is inside the judge folder {judges}" in inside.stderr
    assert not list((judges / "v001-bt").iterdir())


def test_export_refuses_a_fifo_and_writes_through_a_symlink(db, tmp_path):
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    refused = run("export", "--db", db, "--out", fifo)
    assert refused.exit_code == 1 and "exists and is not a regular file" in refused.stderr
    assert fifo.is_fifo()
    target = tmp_path / "real.jsonl"
    target.write_text("old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    run("export", "--db", db, "--out", link, ok=True)
    assert link.is_symlink() and link.resolve() == target  # the link stays; its target got the export
    assert len(target.read_text().splitlines()) == 3


def test_export_hf_replaces_only_a_folder_an_export_wrote(db, tmp_path):
    mine = tmp_path / "datasets"  # the user's own folder, with a dataset_info.json of their own
    mine.mkdir()
    (mine / "dataset_info.json").write_text("{}")
    (mine / "notes.txt").write_text("keep me")
    refused = run("export", "--db", db, "--hf", mine)
    assert refused.exit_code == 1 and refused.stderr.count("\n") == 1 and "not a folder an export wrote" in refused.stderr
    assert (mine / "notes.txt").read_text() == "keep me"
    exported = tmp_path / "exported"
    run("export", "--db", db, "--hf", exported, ok=True)
    run("export", "--db", db, "--hf", exported, "--columns", "pair_id", ok=True)  # an export's folder is replaced
    assert datasets.load_from_disk(str(exported)).column_names == ["pair_id"]


def test_export_without_extra_fields_writes_no_junk_columns(tmp_path):
    data = tmp_path / "bare.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"q{i}", "response_a": "a", "response_b": "b"}) + "\n"
                            for i in range(2)))
    db = tmp_path / "bare.duckdb"
    run("annotate", data, "--db", db, "--backend", "fake", ok=True)
    out = tmp_path / "out.jsonl"
    run("export", "--db", db, "--out", out, ok=True)
    columns = list(json.loads(out.read_text().splitlines()[0]))
    assert not {"J", "S", "O", "N"} & set(columns) and columns[-1] == "category"
    junk = run("export", "--db", db, "--out", out, "--columns", "pair_id,J")
    assert junk.exit_code == 1 and "no column 'J'" in junk.stderr
    twice = run("export", "--db", db, "--out", out, "--columns", "pair_id,pair_id")
    assert twice.exit_code == 1 and twice.stderr.strip() == "Error: --columns: 'pair_id' given twice"


def test_export_hf_on_a_full_disk_names_the_folder(db, tmp_path, monkeypatch):
    def full(self, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(datasets.Dataset, "save_to_disk", full)
    folder = tmp_path / "out_ds"
    result = run("export", "--db", db, "--hf", folder)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {folder}: cannot write the `datasets` folder: No space left on device"
    assert not folder.exists() and not list(tmp_path.glob(".out_ds*"))
