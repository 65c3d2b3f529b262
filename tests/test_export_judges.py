"""`export` and whose labels it writes: one warning line for a first-pass judge (the starter, or measured under
60 % agreement), `--judge NAME` for one judge's labels, and an export that would mix judges refused without
`--mixed`. The same from the Python API, in API words."""

import json
import warnings
from datetime import datetime

import pytest

import labeler
from helpers import run, write_pairs
from labeler.errors import LabelerError, UsageError
from labeler.store import Store
from schemas import JudgeVersion


def version(name: str, judge_id: str, agreement: float, folder) -> JudgeVersion:
    return JudgeVersion(version=name, method="genrm-sft", start_judge_id="x@1", base_model="x",
                        path=str(folder / "judges" / name),
                        weights="full", backend="transformers", mode="cot", samples=3, judge_id=judge_id,
                        heldout_n=40, heldout_agreement=agreement, parent_agreement=0.5, promoted=True,
                        active=False, created_at=datetime(2026, 1, 1, 0, 0, int(name[1:4])))


@pytest.fixture
def two_judges(tmp_path):
    """4 pairs labelled by fake:default, then the first 2 again by fake:other (their latest label)."""
    db = tmp_path / "l.duckdb"
    run("annotate", write_pairs(tmp_path / "d.jsonl", 4), "--db", db, "--backend", "fake", "-q", ok=True)
    run("annotate", "--db", db, "--backend", "fake", "--model", "other", "--limit", "2", "-q", ok=True)
    with Store(db) as store:
        store.register_judge(version("v001-weak", "fake:default", 0.55, tmp_path))
        store.register_judge(version("v002-good", "fake:other", 0.72, tmp_path))
    return db


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_an_export_that_mixes_judges_asks_for_judge_or_mixed(two_judges, tmp_path):
    out = tmp_path / "x.jsonl"
    refused = run("export", "--db", two_judges, "--out", out)
    assert refused.exit_code == 1 and not out.exists()
    assert refused.stderr.strip() == ("Error: the model labels come from 2 judges: v001-weak (2), v002-good (2); "
                                      "export one judge's labels with --judge NAME, or all of them with --mixed")
    mixed = run("export", "--db", two_judges, "--out", out, "--mixed", ok=True)
    assert sorted(r["judge_id"] for r in rows(out)) == ["fake:default"] * 2 + ["fake:other"] * 2
    assert mixed.stderr.count("warning:") == 1 and "v002-good" not in mixed.stderr


def test_export_judge_name_writes_that_judges_labels_and_warns_of_a_first_pass(two_judges, tmp_path):
    out = tmp_path / "x.jsonl"
    weak = run("export", "--db", two_judges, "--out", out, "--judge", "v001-weak", ok=True)
    assert [r["judge_id"] for r in rows(out)] == ["fake:default"] * 4  # each pair's latest label by that judge
    assert weak.stderr.strip() == ("warning: 4 label(s) from judge v001-weak, which agreed with people 55.0% of "
                                   "the time (40 held-out pairs): a first pass to review, not final labels")
    good = run("export", "--db", two_judges, "--out", out, "--judge", "fake:other", ok=True)
    assert [r["judge_id"] for r in rows(out)] == ["fake:other"] * 2 and good.stderr == ""
    unknown = run("export", "--db", two_judges, "--out", out, "--judge", "v009-nope")
    assert unknown.exit_code == 1 and unknown.stderr.startswith("Error: --judge v009-nope: no such judge version")


def test_the_starter_is_always_a_first_pass(tmp_path, tiny_starter):
    db, out = tmp_path / "l.duckdb", tmp_path / "x.jsonl"
    run("annotate", write_pairs(tmp_path / "d.jsonl", 2), "--db", db, "-q", ok=True)
    result = run("export", "--db", db, "--out", out, ok=True)
    assert result.stderr.startswith("warning: 2 label(s) from judge starter, which agreed with people 60.0% of")


def test_the_shipped_starter_warns_with_its_dev_agreement(tmp_path):
    from labeler.export_judges import _judge_names
    from labeler.judge.backends import starter

    with Store(tmp_path / "l.duckdb") as store:
        names = _judge_names(store)
    overall = starter.manifest()["dev_metrics"]["overall"]
    assert names[starter.manifest()["judge"]["judge_id"]] == ("starter", overall["accuracy"],
                                                             f"{overall['n']} dev pairs")


def test_the_api_says_it_in_api_words(two_judges, tmp_path):
    with pytest.raises(LabelerError) as refused:
        labeler.export(two_judges, tmp_path / "x.jsonl")
    assert "judge=NAME" in str(refused.value) and "mixed=True" in str(refused.value) and "--" not in str(refused.value)
    with pytest.warns(UserWarning, match="from judge v001-weak, which agreed with people 55.0%"):
        dataset = labeler.export(two_judges, judge="v001-weak")
    assert dataset.num_rows == 4 and set(dataset["judge_id"]) == {"fake:default"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert labeler.export(two_judges, tmp_path / "y.jsonl", judge="v002-good") == 2
    with pytest.raises(UsageError) as bad:
        labeler.export(two_judges, tmp_path / "z.jsonl", min_confidence=2.0)
    assert "min_confidence must be" in str(bad.value) and "--" not in str(bad.value)
