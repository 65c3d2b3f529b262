"""The JSON Schema files in schemas/json are generated from the pydantic models and must stay in sync."""

import json

import pytest

from schemas import ALL_MODELS, InputPair
from schemas.__main__ import JSON_DIR, render


@pytest.mark.parametrize("name", sorted(ALL_MODELS))
def test_schema_file_in_sync(name):
    path = JSON_DIR / f"{name}.schema.json"
    assert path.exists(), f"missing {path}: run `python -m schemas`"
    assert path.read_text() == render(name), f"{path} is stale: run `python -m schemas`"


def test_no_stray_schema_files():
    assert {p.name for p in JSON_DIR.glob("*.json")} == {f"{n}.schema.json" for n in ALL_MODELS}


def test_input_pair_schema_matches_ingest_rules():
    assert InputPair.model_validate({"prompt": "q", "response_a": "a", "response_b": "b", "note": 1}).note == 1
    for bad in ({"prompt": "", "response_a": "a", "response_b": "b"}, {"prompt": "q", "response_a": "a"},
                {"prompt": "q", "response_a": "a", "response_b": 3}, {"prompt": "q", "response_a": "a",
                                                                      "response_b": "b", "label": "C"}):
        with pytest.raises(ValueError):
            InputPair.model_validate(bad)
    assert json.loads((JSON_DIR / "input_pair.schema.json").read_text())["required"] == ["prompt", "response_a", "response_b"]
