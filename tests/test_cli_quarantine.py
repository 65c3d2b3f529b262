"""`labeler quarantine`: every row ingest set aside, with file, line, field and reason; the ingest hint points here."""

import json

from helpers import write_pairs


def test_lists_bad_rows_by_file_with_line_field_and_reason(tmp_path, cli):
    db = tmp_path / "l.duckdb"
    good = write_pairs(tmp_path / "good.jsonl", 2)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x1", "prompt": "q", "response_a": "a", "response_b": "b"}\n'
                   '{"id": "x2", "prompt": "  ", "response_a": "a", "response_b": "b"}\n'
                   'not json\n')
    ingest = cli("ingest", good, bad, "--db", db)
    assert ingest.exit_code == 0 and "all of them: `labeler quarantine`" in ingest.output
    rows = json.loads(cli("quarantine", "--db", db, "--json", ok=True).stdout)
    assert [(r["file"], r["line"], r["field"], r["reason"]) for r in rows] == [
        (str(bad.resolve()), 2, "prompt", "is empty"), (str(bad.resolve()), 3, None, "invalid JSON")]
    assert json.loads(cli("quarantine", "--db", db, "--file", good, "--json", ok=True).stdout) == []
    table = cli("quarantine", "--db", db, ok=True).output
    assert "Quarantined rows (2)" in table and "invalid JSON" in table
    assert cli("quarantine", "--db", tmp_path / "none.duckdb").exit_code == 1
