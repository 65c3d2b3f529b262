"""The architecture holds: the import-linter contracts in pyproject.toml, `labeler.cli` stays light, and every
module of labeler/, trainer/ and schemas/ imports on its own."""

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = ("labeler", "trainer", "schemas")
HEAVY = ("torch", "transformers", "argilla", "vllm", "trl", "peft", "datasets", "matplotlib", "ray")


def our_modules() -> list[str]:
    names = list(PACKAGES)
    for package in PACKAGES:
        names += [m.name for m in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}.")]
    return sorted(n for n in names if not n.endswith("__main__"))  # __main__ runs the CLI


def test_import_contracts_are_kept():
    from importlinter.cli import lint_imports

    assert lint_imports(config_filename=str(ROOT / "pyproject.toml")) == 0  # the report above names the break


def test_importing_the_cli_loads_no_heavy_library():
    code = f"import json, sys, labeler.cli; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(out.stdout) == []


# One interpreter preloads third-party libraries (so each check is fast), then forks a child per module that
# imports that module first, with none of ours loaded: an import cycle or a missing import fails there.
EACH = r"""
import importlib, json, os, sys, traceback
for lib in ("pydantic", "duckdb", "typer", "rich", "jinja2", "httpx", "torch", "transformers"):
    importlib.import_module(lib)
assert not any(m.split(".")[0] in ("labeler", "trainer", "schemas") for m in sys.modules)
failures = {}
for name in json.loads(sys.argv[1]):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            importlib.import_module(name)
            os._exit(0)
        except BaseException:
            os.write(w, traceback.format_exc().encode()[-2000:])
            os._exit(1)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        error = f.read().decode()
    _, status = os.waitpid(pid, 0)
    if status:
        failures[name] = error or f"exit status {status}"
print(json.dumps(failures))
"""


@pytest.mark.timeout(300)  # one fork per module; ray and torch imports on a loaded box
def test_every_module_imports_on_its_own():
    modules = our_modules()
    assert {"labeler.cli.review", "labeler.retraining", "labeler.judge.reward", "trainer.versions"} <= set(modules)
    out = subprocess.run([sys.executable, "-c", EACH, json.dumps(modules)], capture_output=True, text=True,
                         cwd=ROOT, env={**__import__("os").environ, "TOKENIZERS_PARALLELISM": "false"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout) == {}
