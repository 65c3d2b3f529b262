"""Text from data, files, servers and users reaches the terminal inert (issue 29, item 10): no ESC byte, no
bidi override, and Rich markup (links, blink, emoji codes) shown as written, through every table and error path."""

import json
import re

import duckdb
import pytest

from helpers import run

HOSTILE = "\x1b[2J\x1b]0;pwned\x07[link=http://evil.example]click[/link][blink]b[/blink]:train:\u202e"
LITERALS = ("[link=http://evil.example]", "[blink]", "[/blink]", ":train:")


IN_NAMES = ("[blink]", ":train:")  # what of HOSTILE survives in a file name, its slashes replaced


def assert_inert(text: str, literals=LITERALS) -> None:
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "\U0001f686" not in text  # :train: as an emoji
    joined = re.sub(r"\s*\n\s*", "", text)  # a table title wraps at the table's width
    for literal in literals:
        assert literal in joined, text
    assert "\\x1b[2J" in text  # the control character made visible


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Wide enough that no table cell folds, so the hostile text can be found whole in the output."""
    from labeler.cli import render

    monkeypatch.setattr(render.console, "width", 2000)


@pytest.fixture
def hostile_dir(tmp_path):
    folder = tmp_path / f"in[bold]:train:\x1b[2J"
    folder.mkdir()
    return folder


def _gold(path, source: str):
    path.write_text("".join(json.dumps({"prompt": f"q{i}", "response_a": f"a{i}", "response_b": f"b{i}",
                                        "label": "AB"[i % 2], "source": source, "category": source}) + "\n"
                            for i in range(4)))
    return path


def test_ingest_and_quarantine_tables_show_hostile_rows_and_file_names_inert(tmp_path, hostile_dir):
    data = hostile_dir / f"d{HOSTILE.replace('/', '_')}.jsonl"
    data.write_text(json.dumps({"prompt": HOSTILE, "response_a": "x"}) + "\n" + HOSTILE + "\n")
    db = tmp_path / "s.duckdb"
    ingested = run("ingest", data, "--db", db, ok=True)
    assert_inert(ingested.output, IN_NAMES)  # the folder's "[bold]" is cut from the left (paths at 80 columns)
    listed = run("quarantine", "--db", db, ok=True)
    assert_inert(listed.output, IN_NAMES)  # the table shows file and reason; the raw rows are in --json
    raw = run("quarantine", "--db", db, "--json", ok=True).output
    assert "\x1b" not in raw and "[link=http://evil.example]" in raw  # JSON escapes control characters


def test_eval_groups_and_status_show_hostile_sources_inert(tmp_path):
    db = tmp_path / f"s{HOSTILE.replace('/', '_')}.duckdb"
    result = run("eval", _gold(tmp_path / "g.jsonl", HOSTILE), "--db", db, "--backend", "fake", ok=True)
    assert_inert(result.output)
    assert_inert(run("status", "--db", db, ok=True).output, IN_NAMES)


def test_judge_versions_and_error_lines_show_hostile_text_inert(tmp_path):
    db = tmp_path / "s.duckdb"
    run("ingest", _gold(tmp_path / "g.jsonl", "x"), "--db", db, ok=True)
    con = duckdb.connect(str(db))
    con.execute("INSERT INTO judges VALUES (?, 'bt', NULL, 'base', 'base', '/x', 'lora', 'transformers', 'direct', 1, "
                "'fake:default', 0, NULL, NULL, true, false, now(), NULL)", [HOSTILE])
    con.close()
    assert_inert(run("judges", "list", "--db", db, ok=True).output)
    missing = run("ingest", tmp_path / f"nope{HOSTILE.replace('/', '_')}.jsonl", "--db", db)
    assert missing.exit_code == 1 and missing.stderr.count("\n") == 1
    assert "\x1b" not in missing.stderr and "\\x1b[2J" in missing.stderr and "[blink]" in missing.stderr


def test_a_server_error_body_is_one_inert_line():
    from labeler.cli.options import user_errors
    from labeler.errors import LabelerError

    import typer

    @user_errors
    def failing():
        raise LabelerError(f"http://127.0.0.1:8000/v1: server error 500: {HOSTILE}\nsecond line")

    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(typer.Exit):
        failing()
    assert err.getvalue().count("\n") == 1 and "\x1b" not in err.getvalue() and "\\nsecond line" in err.getvalue()
