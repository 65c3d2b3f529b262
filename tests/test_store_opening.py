"""Which files labeler opens as its store, and how (issue 29, items 6, 12, 14): a DuckDB file of another
application is refused untouched by every command; a FIFO is refused instead of waited on; read-only commands
open the store read-only, so a reader that holds it (or a read-only filesystem) does not stop them."""

import os
import subprocess
import sys
import textwrap

import duckdb
import pytest

from helpers import run, write_pairs


def _tables(path) -> list[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return sorted(r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall())
    finally:
        con.close()


@pytest.fixture
def foreign(tmp_path):
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE pairs (x INTEGER); CREATE TABLE invoices (id INTEGER)")
    con.close()
    return path


@pytest.mark.parametrize("command", [["status"], ["status", "--json"], ["quarantine"], ["judges", "list"],
                                     ["export", "--out", "OUT"]])
def test_a_read_command_refuses_another_applications_database_untouched(foreign, command, tmp_path):
    before = foreign.read_bytes()
    args = [str(tmp_path / "o.jsonl") if a == "OUT" else a for a in command]
    result = run(*args, "--db", foreign)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "a DuckDB database of another application (tables: invoices, pairs)" in result.stderr
    assert _tables(foreign) == ["invoices", "pairs"] and foreign.read_bytes() == before


def test_ingest_refuses_another_applications_database_but_fills_a_new_one(foreign, tmp_path):
    data = write_pairs(tmp_path / "d.jsonl", 2)
    result = run("ingest", data, "--db", foreign)
    assert result.exit_code == 1 and "another application" in result.stderr
    assert _tables(foreign) == ["invoices", "pairs"]  # no schema_migrations added before the error
    run("ingest", data, "--db", tmp_path / "new.duckdb", ok=True)


def test_status_refuses_an_empty_duckdb_file_without_adding_tables(tmp_path):
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    result = run("status", "--db", empty)
    assert result.exit_code == 1 and "not a labeler store" in result.stderr
    assert _tables(empty) == []


def test_a_fifo_as_the_store_is_refused_at_once(tmp_path):
    fifo = tmp_path / "s.duckdb"
    os.mkfifo(fifo)
    for command in (["status"], ["ingest", write_pairs(tmp_path / "d.jsonl", 1)]):
        result = run(*command, "--db", fifo)  # opening a FIFO to read its header would wait for a writer forever
        assert result.exit_code == 1 and "not a regular file" in result.stderr


def test_read_commands_open_the_store_read_only_beside_another_reader(tmp_path):
    """A process holding the file read-only blocks any writer (DuckDB's lock), but not another reader; the same
    opening mode is what lets these commands read a store on a read-only filesystem."""
    db = tmp_path / "s.duckdb"
    run("annotate", write_pairs(tmp_path / "d.jsonl", 2), "--db", db, "--backend", "fake", ok=True)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time, duckdb
        con = duckdb.connect({str(db)!r}, read_only=True)
        print("open", flush=True)
        sys.stdin.read()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        env = {"LABELER_LOCK_WAIT": "0.5"}
        for command in (["status"], ["status", "--json"], ["quarantine"], ["judges", "list"],
                        ["export", "--out", tmp_path / "o.jsonl"]):
            run(*command, "--db", db, env=env, ok=True)
        writer = run("ingest", write_pairs(tmp_path / "e.jsonl", 1, start=50), "--db", db, env=env)
        assert writer.exit_code == 1 and "held by another process" in writer.stderr  # the holder is real
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
