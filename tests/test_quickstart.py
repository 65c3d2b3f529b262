"""The Python API as users meet it: examples/quickstart.py (ingest -> annotate -> export -> one TRL DPO step) runs
on the tiny Llama, the notebook holds the same code, and `import labeler` exposes the stages lazily."""

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "examples"))

import build_notebook  # noqa: E402


def notebook_code() -> str:
    cells = json.loads((ROOT / "examples" / "quickstart.ipynb").read_text())["cells"]
    return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def test_the_quickstart_notebook_runs_end_to_end(tiny_llama, tmp_path):
    """The notebook's code cells, in order, in one fresh interpreter (what Run All does in a kernel)."""
    env = {**os.environ, "LABELER_QUICKSTART_MODEL": str(tiny_llama), "LABELER_QUICKSTART_DIR": str(tmp_path),
           "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", notebook_code()], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "judged 20 pairs with tiny_llama" in out.stdout.replace(str(tiny_llama.name), "tiny_llama")
    assert "20 DPO rows; wrote 20 labels to" in out.stdout
    assert "DPO step done: loss " in out.stdout
    labels = duckdb.connect().execute(f"SELECT label_source, count(*) FROM read_parquet('{tmp_path}/labels.parquet') "
                                      "GROUP BY ALL").fetchall()
    assert labels == [("model", 20)]


def test_the_examples_import_only_the_public_api():
    for path in (ROOT / "examples").glob("*.py"):
        ours = [line for line in path.read_text().splitlines()
                if line.startswith(("import labeler", "from labeler", "import trainer", "from trainer"))]
        assert all(line == "import labeler" for line in ours), (path.name, ours)


def test_the_notebook_is_the_script():
    script = (ROOT / "examples" / "quickstart.py").read_text()
    committed = (ROOT / "examples" / "quickstart.ipynb").read_text()
    assert committed == build_notebook.notebook(script), "run `python examples/build_notebook.py`"
    code = "\n".join("".join(c["source"]) for c in json.loads(committed)["cells"] if c["cell_type"] == "code")
    assert "labeler.annotate(pairs, db=DB" in code and "labeler.export(labelled, dpo=True)" in code
    assert "trainer.train()" in code
    assert [line for line in code.splitlines() if line.strip()] == [
        line for line in script.splitlines() if line.strip() and not line.startswith("#")]


def test_import_labeler_is_light_and_exposes_the_stages():
    code = ("import json, sys, labeler; light = [m for m in ('duckdb', 'torch', 'labeler.api') if m in sys.modules]; "
            "f = labeler.ingest; import labeler.ingestion; "
            "print(json.dumps([light, labeler.ingest is f, sorted(labeler.__all__), labeler.annotate.__module__]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(out.stdout) == [[], True, ["annotate", "audit", "calibrate", "clear_calibration",
                                                 "default_model", "evaluate", "export", "ingest", "judges", "rank",
                                                 "retrain", "review_pull", "review_push", "status", "use_judge"],
                                      "labeler.api"]


def test_the_api_functions_are_documented_and_typed():
    import inspect

    import labeler

    for name in labeler.__all__:
        fn = getattr(labeler, name)
        assert fn.__doc__ and len(fn.__doc__) > 80, name
        hints = inspect.get_annotations(fn)
        assert "return" in hints and set(inspect.signature(fn).parameters) <= set(hints), name


def test_the_api_runs_the_stages_and_reports_bad_options_before_any_work(tmp_path):
    import pytest

    import labeler
    from helpers import write_pairs
    from labeler.errors import LabelerError, UsageError

    db = tmp_path / "api.duckdb"
    with pytest.raises(UsageError, match="mode must be one of"):
        labeler.annotate(db, [write_pairs(tmp_path / "d.jsonl", 3)], backend="fake", mode="bogus")
    assert labeler.status(db).pairs == 0  # refused before ingesting
    result = labeler.annotate(db, [tmp_path / "d.jsonl"], backend="fake", mode="cot", samples=2)
    assert (len(result.judged), result.ingested[0].counts.new_pairs) == (3, 3)
    assert labeler.export(db, tmp_path / "out.parquet", columns=["pair_id", "label"], on_warning=print) == 3
    assert labeler.status(db).by_state == {"model-labeled": 3}
    with pytest.raises(UsageError, match="min_confidence must be a number in"):
        labeler.export(db, tmp_path / "x.jsonl", min_confidence=2.0)
    with pytest.raises(LabelerError, match="no such database"):
        labeler.export(tmp_path / "none.duckdb", tmp_path / "x.jsonl")
