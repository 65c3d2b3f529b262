"""What a person reads at 80 columns: every `--help`, and the tables of status, quarantine, eval and judges list,
with no word broken across lines; choices as choices (one usage error everywhere); --json on every command that
prints a table, --quiet on every command, and one meaning of --limit."""

import json
import re
import sys
from datetime import datetime
from pathlib import Path

import pytest
import typer
from rich.console import Console

from helpers import run, write_pairs
from labeler.cli import app, render
from labeler.store import Store
from schemas import JudgeVersion

sys.path.insert(0, str(Path(__file__).parents[1] / "docs"))
from cli_reference import command_paths  # noqa: E402

WIDTH = 80
EDGES = "│┃║|─━┏┓┗┛┡┩└┘┳┻╇┼╭╮╰╯"  # table rules and corners: not part of a word


def commands() -> list[tuple[tuple[str, ...], object]]:
    """(path, click command) of every command that does something (not the groups)."""
    root = typer.main.get_command(app)
    found = []
    for path in command_paths(root):
        command = root
        for name in path:
            command = command.get_command(None, name)
        if not hasattr(command, "list_commands"):
            found.append((path, command))
    return found


def tokens(output: str) -> set[str]:
    """The words on the screen: split at spaces and table rules, so a word broken across lines is not among them."""
    return set(re.split(r"[\s" + EDGES + r"]+", output)) - {""}


def broken(output: str, words) -> list[str]:
    """The words that do not appear whole (trailing punctuation aside)."""
    seen = tokens(output)
    seen |= {t.rstrip(".,;:)]") for t in seen} | {t.lstrip("([`'\"") for t in seen} | {t.split("/")[-1] for t in seen}
    return [w for w in words if w not in seen and w.rstrip(".,;:)]").lstrip("([`'\"") not in seen]


def wide(output: str) -> list[str]:
    return [line for line in output.splitlines() if len(line.rstrip()) > WIDTH]


@pytest.fixture
def at_80_columns(monkeypatch):
    monkeypatch.setattr(render, "console", Console(width=WIDTH, no_color=True))
    monkeypatch.setenv("COLUMNS", str(WIDTH))


def test_every_help_fits_80_columns_without_a_broken_word(at_80_columns):
    assert len(commands()) >= 15
    for path, command in commands():
        result = run(*path, "--help", env={"COLUMNS": str(WIDTH)})
        assert result.exit_code == 0, path
        assert not wide(result.output), (path, wide(result.output))
        for param in (p for p in command.params if not getattr(p, "hidden", False)):
            words = [*param.opts, *param.secondary_opts, *(param.help or "").split()]
            assert not broken(result.output, words), (path, param.name, broken(result.output, words))


LONG_DIR = "a_folder_with_a_rather_long_name_to_shorten"
LONG_FILE = "bad_rows_with_a_long_file_name.jsonl"


@pytest.fixture
def store(tmp_path):
    """A store with model labels, quarantined rows from a long path, human labels in long-named groups, and a
    trained version."""
    folder = tmp_path / LONG_DIR
    folder.mkdir()
    db = folder / "labels.duckdb"
    run("annotate", write_pairs(folder / "pairs.jsonl", 6), "--db", db, "--backend", "fake", "--mode", "cot",
        "-k", "3", "-q", ok=True)
    bad = folder / LONG_FILE
    bad.write_text('{"prompt": "x"}\nnot json\n{"prompt": "p", "response_a": "a", "response_b": "' + "y" * 300 + '"}\n')
    run("ingest", bad, "--db", db, "--max-chars", "100", "-q", ok=True)
    gold = folder / "gold.jsonl"
    gold.write_text("".join(json.dumps({"prompt": f"q{i}", "response_a": "a", "response_b": "b", "label": "A",
                                        "source": "hh_helpful_online", "category": "category_name_of_20c"})
                            + "\n" for i in range(6)))
    with Store(db) as s:
        s.register_judge(JudgeVersion(
            version="v002-star-dpo", method="star-dpo", parent=None,
            start_judge_id="smollm2-135m-instruct-b179c9523d0e@b1913d6ee10a", base_model="smollm2-135m-instruct",
            path=str(folder), weights="lora", backend="transformers", mode="cot", samples=4, judge_id="v002@1",
            heldout_n=78, heldout_agreement=0.61, parent_agreement=0.55, promoted=True, active=False,
            created_at=datetime(2026, 1, 1)))
    return db, gold


def test_status_quarantine_eval_and_judges_list_fit_80_columns(store, at_80_columns):
    db, gold = store
    screens = {
        "status": (run("status", "--db", db), ["model-labeled", "quarantined", "0.50-0.55", "finished",
                                               "annotate"]),
        "quarantine": (run("quarantine", "--db", db), [LONG_FILE, "response_a", "response_b", "invalid", "JSON",
                                                       "missing", "field"]),
        "eval": (run("eval", gold, "--db", db, "--backend", "fake", "--mode", "cot", "-k", "2"),
                 ["hh_helpful_online", "category_name_of_20c", "gold.jsonl", "ECE", "raw/cal", "already",
                  "stored", "quarantined"]),
        "judges list": (run("judges", "list", "--db", db), ["v002-star-dpo", "star-dpo", "(cot)", "61.0", "55.0",
                                                            "(78)", "smollm2-135m-instruct"]),
    }
    for name, (result, words) in screens.items():
        assert result.exit_code == 0, (name, result.output)
        assert not wide(result.output), (name, wide(result.output))
        assert not broken(result.output, words), (name, broken(result.output, words), result.output)
    status = screens["status"][0].output
    assert status.startswith(f".../{LONG_DIR}/labels.duckdb: 6 pairs")  # cut at a folder
    assert "0.00-0.10" not in status and "0.95-1.00" in status  # only bins a label's confidence can fall in
    assert "K=" not in status and "votes" in tokens(status) and "order" in tokens(status)
    assert "judge key" not in run("annotate", "--db", db, "--backend", "fake", "--model", "other").output
    evaluated = screens["eval"][0].output
    flat = " ".join(evaluated.split())  # titles and notes wrap between words
    assert "(cot, 2 votes per order)" in flat and "expected calibration error" in flat
    assert "T = " in flat and "sigmoid(score / T)" in flat  # T says what it is


@pytest.mark.parametrize("args", [
    ("annotate", "--mode"), ("annotate", "--backend"), ("annotate", "--dtype"), ("eval", "x.jsonl", "--mode"),
    ("eval", "x.jsonl", "--backend"), ("eval", "x.jsonl", "--dtype"), ("calibrate", "--mode"),
    ("calibrate", "--backend"), ("retrain", "--method"), ("export", "--out", "x.jsonl", "--format"),
])
def test_a_wrong_choice_is_the_same_usage_error_everywhere(args, tmp_path):
    result = run(*args, "bogus", "--db", tmp_path / "l.duckdb")
    assert result.exit_code == 2
    assert f"Invalid value for '{args[-1]}'" in result.output and "'bogus' is not one of" in result.output
    assert not (tmp_path / "l.duckdb").exists()  # refused before anything was opened


def test_the_help_lists_each_choice():
    help_text = run("annotate", "--help").output
    from labeler.judge.backends import BACKENDS

    for listed in ("<direct|cot>", "<float32|bfloat16>", "|".join(BACKENDS)):
        assert listed in help_text
    assert "star-dpo|star-sft|genrm-sft|bt|bt-probe" in run("retrain", "--help").output
    assert "<jsonl|parquet>" in run("export", "--help").output


def test_quiet_on_every_command_and_json_on_every_table_command():
    options = {" ".join(path): {o for p in command.params for o in p.opts} for path, command in commands()}
    assert [name for name, opts in options.items() if "--quiet" not in opts] == []
    tables = ("ingest", "annotate", "status", "quarantine", "eval", "retrain", "judges list")
    assert [name for name in tables if "--json" not in options[name]] == []


def test_limit_means_at_most_n_pairs_this_run_everywhere():
    limits = {" ".join(path): p.help for path, command in commands() for p in command.params
              if "--limit" in p.opts and not p.hidden}
    assert set(limits) >= {"annotate", "retrain", "review push"}
    assert all(h.startswith(("At most N pairs this run", "At most N groups this run")) for h in limits.values()), limits
    assert "eval" not in limits and "--per-file" in run("eval", "--help").output


def test_eval_limit_still_works_and_says_its_new_name(tmp_path):
    gold = write_pairs(tmp_path / "g.jsonl", 4, labeled=True)
    result = run("eval", gold, "--db", tmp_path / "l.duckdb", "--backend", "fake", "--limit", "2", "--json")
    assert result.exit_code == 0
    assert "eval's --limit is now --per-file" in result.stderr
    assert json.loads(result.stdout)["metrics"]["n"] == 2


def test_json_output_of_ingest_annotate_and_eval(tmp_path):
    db, data = tmp_path / "l.duckdb", write_pairs(tmp_path / "d.jsonl", 3)
    ingested = json.loads(run("ingest", data, "--db", db, "--json", ok=True).stdout)
    assert [(r["path"], r["new_pairs"], r["layout"]) for r in ingested] == [(str(data), 3, "pairs")]
    annotated = json.loads(run("annotate", "--db", db, "--backend", "fake", "--json", ok=True).stdout)
    assert annotated["judged"] == 3 and sum(annotated["labels"].values()) == 3
    gold = write_pairs(tmp_path / "g.jsonl", 2, labeled=True, start=10)
    evaluated = json.loads(run("eval", gold, "--db", db, "--backend", "fake", "--json", ok=True).stdout)
    assert evaluated["metrics"]["n"] == 2 and evaluated["ingested"][0]["gold_labels"] == 2


def test_quiet_prints_nothing(tmp_path):
    db, data = tmp_path / "l.duckdb", write_pairs(tmp_path / "d.jsonl", 2)
    run("annotate", data, "--db", db, "--backend", "fake", "-q", ok=True)
    for args in (("status",), ("quarantine",), ("judges", "list"), ("judges", "use", "default")):
        result = run(*args, "--db", db, "--quiet", ok=True)
        assert result.output == "", args
