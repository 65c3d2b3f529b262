"""The core install labels; each optional part is an extra (pyproject.toml), and a command that needs a missing
one stops before any work with one `Error:` line naming `pip install 'labeler[EXTRA]'` (labeler/extras.py)."""

import ast
import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from helpers import run, write_pairs
from labeler.extras import EXTRAS
from labeler.store import Store

ROOT = Path(__file__).parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
OURS = ("labeler", "trainer", "schemas")


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~\[;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _hidden(monkeypatch, extra: str) -> None:
    for module in EXTRAS[extra]:
        monkeypatch.setitem(sys.modules, module, None)  # as if not installed


def _one_error_line(result, extra: str) -> str:
    assert result.exit_code == 1, result.output
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("Error: ")
    assert line.endswith(f"needs the {extra} extra ({', '.join(EXTRAS[extra])} not installed): "
                         f"pip install 'labeler[{extra}]'"), line
    return line


def test_retrain_without_the_train_extra_stops_before_opening_the_store(tmp_path, monkeypatch):
    _hidden(monkeypatch, "train")
    gold, db = write_pairs(tmp_path / "g.jsonl", 4, labeled=True), tmp_path / "l.duckdb"
    line = _one_error_line(run("retrain", "--gold", gold, "--db", db, "--method", "genrm-sft"), "train")
    assert line.startswith("Error: retrain --method genrm-sft needs")
    assert not db.exists()


def test_bt_probe_retrain_needs_no_train_extra(tmp_path, monkeypatch):
    _hidden(monkeypatch, "train")
    result = run("retrain", "--db", tmp_path / "l.duckdb", "--method", "bt-probe")
    assert result.exit_code == 1 and "extra" not in result.output
    assert "retrain needs gold labels" in result.stderr  # past the extra check, stopped by the empty store


def test_eval_report_without_the_plots_extra_stores_nothing(tmp_path, monkeypatch):
    _hidden(monkeypatch, "plots")
    gold, db = write_pairs(tmp_path / "g.jsonl", 3, labeled=True), tmp_path / "l.duckdb"
    line = _one_error_line(run("eval", gold, "--db", db, "--backend", "fake", "--out", tmp_path / "rep"), "plots")
    assert line.startswith("Error: writing the eval report (its PNG plots) needs")
    with Store(db) as store:
        assert (store.count("pairs"), store.count("judgments")) == (0, 0)
    assert not (tmp_path / "rep").exists()
    assert run("eval", gold, "--db", db, "--backend", "fake").exit_code == 0  # without --out no plot is drawn


def test_review_push_without_the_review_extra(tmp_path, monkeypatch):
    db = tmp_path / "l.duckdb"
    run("annotate", write_pairs(tmp_path / "d.jsonl", 2), "--db", db, "--backend", "fake", "-q", ok=True)
    _hidden(monkeypatch, "review")
    result = run("review", "push", "--db", db, "--url", "http://127.0.0.1:9", "--api-key", "k")
    assert _one_error_line(result, "review").startswith("Error: pushing to and pulling from Argilla needs")


def test_vllm_backend_without_the_vllm_extra(tmp_path, monkeypatch):
    _hidden(monkeypatch, "vllm")
    result = run("annotate", write_pairs(tmp_path / "d.jsonl", 2), "--db", tmp_path / "l.duckdb", "--backend", "vllm")
    assert _one_error_line(result, "vllm").startswith("Error: the vllm backend (and a GPU) needs")


def test_extras_match_pyproject():
    declared = PROJECT["optional-dependencies"]
    assert set(EXTRAS) <= set(declared)
    for extra, modules in EXTRAS.items():
        names = {_name(r) for r in declared[extra]}
        for module in modules:  # llama_cpp's distribution is llama-cpp-python
            dist = module.replace("_", "-")
            assert dist in names or f"{dist}-python" in names, f"[{extra}] does not declare {module}"
    core = {_name(r) for r in PROJECT["dependencies"]}
    extra_only = {m.replace("_", "-") for modules in EXTRAS.values() for m in modules}
    assert not core & extra_only, "an extra's package is in the core install"
    assert _name(declared["all"][0]) == "labeler"
    assert set(re.search(r"\[(.*)\]", declared["all"][0]).group(1).split(",")) == set(EXTRAS) - {"vllm"}


def _third_party_imports() -> dict[str, str]:
    """top-level module -> a file that imports it, over labeler/, trainer/ and schemas/ (lazy imports too)."""
    found = {}
    for package in OURS:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in OURS and top != "__future__":
                        found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_imported_library_is_declared_in_core_or_its_extra():
    core = {_name(r) for r in PROJECT["dependencies"]}
    by_extra = {m: extra for extra, modules in EXTRAS.items() for m in modules}
    distributions = importlib.metadata.packages_distributions()
    undeclared = []
    for module, where in _third_party_imports().items():
        if module in by_extra:
            continue  # declared by its extra (checked above), imported only after extras.require
        dists = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
        if not dists & core:
            undeclared.append(f"{where} imports {module}")
    assert undeclared == [], "pyproject.toml's core dependencies do not declare what these import"


def test_every_module_imports_without_any_extra():
    hidden = [m for modules in EXTRAS.values() for m in modules]
    modules = [p.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
               for package in OURS for p in sorted((ROOT / package).rglob("*.py"))]
    modules = [m.removesuffix(".__init__") for m in modules if not m.endswith("__main__")]
    code = ("import importlib, json, sys\n"
            f"for m in {hidden!r}: sys.modules[m] = None\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "from labeler.cli import main\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers'))[:1]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) != []  # the import really ran (torch is core)


@pytest.mark.parametrize("command", [["--help"], ["annotate", "--help"], ["retrain", "--help"]])
def test_help_works_without_any_extra(monkeypatch, command):
    for extra in EXTRAS:
        _hidden(monkeypatch, extra)
    assert run(*command).exit_code == 0


@pytest.mark.real_model
def test_the_default_model_converts_without_any_extra(tmp_path):
    """The first `annotate` of a core install converts the GGUF: transformers needs gguf and accelerate for it, so
    both are core (a subprocess, so that transformers decides what is installed with the extras hidden)."""
    hidden = [m for modules in EXTRAS.values() for m in modules]
    code = ("import sys\n"
            f"for m in {hidden!r}: sys.modules[m] = None\n"
            "from labeler.judge.backends.models import default_model_dir\n"
            f"print(default_model_dir({str(tmp_path / 'cache')!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (Path(out.stdout.strip()) / "model.safetensors").is_file()
