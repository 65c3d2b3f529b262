"""The Python API speaks `datasets`: annotate takes a Dataset (or a list of dicts) and returns it with labels,
export turns it into TRL rows; errors come in API words; calibrate, judges and review have functions."""

import json

import pytest
from datasets import Dataset

import labeler
from helpers import write_pairs
from labeler.errors import LabelerError, UsageError


def pairs(n: int) -> list[dict]:
    return [{"prompt": f"What is {i} + {i}?", "response_a": f"It is {2 * i}.", "response_b": f"It is {2 * i + 1}.",
             "topic": "arith"} for i in range(n)]


def test_annotate_a_dataset_returns_it_with_labels_and_export_makes_trl_rows(tmp_path):
    data = Dataset.from_list(pairs(4) + [pairs(1)[0], {"prompt": "no responses"}])  # a repeat, a bad row
    labelled = labeler.annotate(data, db=tmp_path / "l.duckdb", backend="fake")
    assert isinstance(labelled, Dataset) and labelled.num_rows == 6
    assert labelled.column_names == ["prompt", "response_a", "response_b", "topic", "pair_id", "label",
                                     "label_source", "confidence", "rationale", "judge_id"]
    assert all(label in ("A", "B") for label in labelled["label"][:5]) and labelled["label"][5] is None
    assert labelled["pair_id"][4] == labelled["pair_id"][0] and labelled["label"][4] == labelled["label"][0]
    assert set(labelled["judge_id"][:5]) == {"fake:default"}
    dpo = labeler.export(labelled, dpo=True, columns=["topic"])
    assert isinstance(dpo, Dataset) and dpo.column_names == ["prompt", "chosen", "rejected", "topic"]
    first = labelled[0]
    chosen = first["response_a"] if first["label"] == "A" else first["response_b"]
    assert (dpo[0]["prompt"], dpo[0]["chosen"]) == (first["prompt"], chosen) and dpo.num_rows == 5
    again = labeler.annotate(data, db=tmp_path / "l.duckdb", backend="fake")  # resumes: nothing judged twice
    assert again["label"] == labelled["label"]


def test_a_list_of_dicts_comes_back_as_a_list_and_no_db_needs_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    labelled = labeler.annotate(pairs(2), backend="fake")
    assert isinstance(labelled, list) and [set(r) >= {"label", "confidence", "topic"} for r in labelled] == [True] * 2
    assert list(tmp_path.iterdir()) == []  # the store lived in a temporary folder
    dpo = labeler.export(labelled, dpo=True)
    assert isinstance(dpo, list) and set(dpo[0]) == {"prompt", "chosen", "rejected"}
    messages = [{**r, "prompt": [{"role": "user", "content": r["prompt"]}]} for r in labelled]
    assert labeler.export(messages, dpo=True)[0]["chosen"][0]["role"] == "assistant"  # conversational


def test_api_errors_speak_python(tmp_path):
    trl_rows = [{"prompt": "p", "chosen": "a", "rejected": "b"}]
    with pytest.raises(UsageError, match="annotate takes prompt/response_a/response_b rows"):
        labeler.annotate(trl_rows, backend="fake")
    with pytest.raises(UsageError, match="pass dpo=True"):
        labeler.export(pairs(1))
    with pytest.raises(UsageError, match="rows have no label"):
        labeler.export(pairs(1), dpo=True)
    db = tmp_path / "l.duckdb"
    labeler.annotate(db, [write_pairs(tmp_path / "d.jsonl", 2)], backend="fake")
    with pytest.raises(LabelerError) as bad:
        labeler.export(db, tmp_path / "x.jsonl", columns=["nope"])
    assert str(bad.value).startswith("columns: no column 'nope'")
    for call in (lambda: labeler.judges(tmp_path / "none.duckdb"), lambda: labeler.calibrate(tmp_path / "none.duckdb")):
        with pytest.raises(LabelerError, match="no such database"):
            call()
    with pytest.raises(UsageError, match="pass both url and api_key"):
        labeler.review_push(db, url="http://127.0.0.1:9")


def test_export_a_store_as_a_dataset_and_calibrate_and_judges_functions(tmp_path):
    db = tmp_path / "l.duckdb"
    labeler.annotate(db, [write_pairs(tmp_path / "d.jsonl", 24, labeled=True)], backend="fake", mode="cot", samples=2)
    labeler.evaluate(db, [tmp_path / "d.jsonl"], backend="fake", mode="cot", samples=2)
    ds = labeler.export(db, dpo=True)
    assert isinstance(ds, Dataset) and ds.column_names == ["prompt", "chosen", "rejected"] and ds.num_rows == 24
    record = labeler.calibrate(db, backend="fake", mode="cot", samples=2, force=True)
    assert record.judge_id == "fake:default" and record.temperature > 0
    assert labeler.clear_calibration(db, backend="fake", mode="cot", samples=2) == 1
    assert [v.version for v in labeler.judges(db)][:1] in (["starter"], [])
    assert labeler.use_judge(db, "default") is None
    assert json.dumps(sorted(labeler.__all__))  # every public name resolves
    assert all(callable(getattr(labeler, name)) for name in labeler.__all__)
