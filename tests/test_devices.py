"""`--device auto|cpu|cuda[:N]`: resolution, the judge key, tensors made on the model's device, and `--model` as a
Hub id in the local Hugging Face cache (offline). This box has no GPU: CUDA is checked by what it must refuse, by
a stand-in torch.cuda for the resolution rules, and by running the sampler with torch's default device set to
`meta`, so any tensor made without naming the model's device breaks the run."""

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from helpers import run, write_pairs
from labeler.errors import LabelerError
from labeler.judge.backends import SamplingParams, make_backend
from labeler.judge.backends.devices import default_dtype, key_fields, resolve_device, resolve_dtype
from labeler.judge.judge import Judge, JudgeConfig
from labeler.judge.prompts import template_hash


def test_cpu_and_auto_resolve_to_the_cpu_here_and_cuda_is_refused():
    assert not torch.cuda.is_available()  # the premise of the CPU suite
    assert resolve_device("cpu") == resolve_device("auto") == resolve_device(None) == "cpu"
    assert default_dtype("cpu") == "float32" and resolve_dtype(None, "cpu") == "float32"
    for spec in ("cuda", "cuda:1"):
        with pytest.raises(LabelerError, match=f"--device {spec}: CUDA is not available"):
            resolve_device(spec)
    with pytest.raises(LabelerError, match="--device must be auto, cpu, cuda or cuda:N"):
        resolve_device("gpu0")


def test_auto_is_cuda_when_torch_sees_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == resolve_device("cuda") == "cuda:0" and resolve_device("cuda:1") == "cuda:1"
    assert default_dtype("cuda:1") == "bfloat16" and resolve_dtype("float32", "cuda:0") == "float32"
    with pytest.raises(LabelerError, match="only 2 CUDA device"):
        resolve_device("cuda:2")


def test_judge_key_adds_device_and_dtype_only_off_the_cpu_float32_default(tiny_llama):
    assert key_fields("cpu", "float32") == {}
    assert key_fields("cpu", "bfloat16") == {"dtype": "bfloat16"}  # as before devices existed
    assert key_fields("cuda:1", "bfloat16") == key_fields("cuda:0", "bfloat16") == {"dtype": "bfloat16", "device": "cuda"}
    assert key_fields("cuda:0", "float32") == {"device": "cuda"}
    backend = make_backend("transformers", model=str(tiny_llama), device="cpu")
    judge = Judge(backend, JudgeConfig())
    options = {k: v for k, v in asdict(JudgeConfig()).items() if k not in ("template", "criteria")}  # newer fields
    old = {"model": backend.model_id, "template": template_hash("direct"), **options}
    assert judge.judge_key == hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()[:16]


def test_annotate_device_cpu_and_auto_share_the_default_key_and_cuda_is_one_error_line(tiny_llama, tmp_path):
    import duckdb

    db, data = tmp_path / "l.duckdb", write_pairs(tmp_path / "d.jsonl", 2)
    run("annotate", data, "--db", db, "--model", tiny_llama, "--device", "cpu", "-q", ok=True)
    again = run("annotate", "--db", db, "--model", tiny_llama, "--device", "auto", ok=True)
    assert "Nothing to judge: every stored pair already has a label" in again.output
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*), count(DISTINCT judge_key) FROM judgments").fetchone() == (2, 1)
    bad = run("annotate", "--db", db, "--model", tiny_llama, "--device", "cuda")
    assert bad.exit_code == 1 and bad.stderr.count("\n") == 1
    assert bad.stderr.startswith("Error: --device cuda: CUDA is not available")
    bad = run("retrain", "--db", db, "--model", tiny_llama, "--device", "cuda", "--method", "genrm-sft")
    assert bad.exit_code == 1 and bad.stderr.startswith("Error: --device cuda: CUDA is not available")


@pytest.mark.parametrize("cascade", ["on", "off"])
def test_every_tensor_is_made_on_the_model_device(tiny_llama, monkeypatch, cascade):
    """With torch's default device `meta`, a tensor made without the model's device would be a meta tensor and the
    run would fail; the results must equal a plain run's, in direct mode and in both samplers."""
    monkeypatch.setenv("LABELER_CASCADE", cascade)
    backend = make_backend("transformers", model=str(tiny_llama), batch_size=4, device="cpu")
    backend.load()
    prompts = [backend.render_chat("system", f"question {i} " * (4 + 3 * i), "Verdict: [[") for i in range(4)]
    params = SamplingParams(max_new_tokens=10)
    direct, chains = backend.verdict_logprobs(prompts, ("A", "B")), backend.generate(prompts, 3, params, ("A", "B"), "[[")
    assert backend._sampler(("A", "B"), "[[").shared_prefix == (cascade == "on")
    torch.set_default_device("meta")
    try:
        meta_direct = backend.verdict_logprobs(prompts, ("A", "B"))
        meta_chains = backend.generate(prompts, 3, params, ("A", "B"), "[[")
    finally:
        torch.set_default_device(None)
    assert meta_direct == direct
    assert [[(c.text, c.verdict_logprobs, c.forced) for c in row] for row in meta_chains] == \
           [[(c.text, c.verdict_logprobs, c.forced) for c in row] for row in chains]


def test_cascade_default_follows_the_device(monkeypatch):
    from labeler.judge.backends.transformers.cascade import wanted

    monkeypatch.delenv("LABELER_CASCADE", raising=False)
    assert wanted(torch.device("cpu")) and not wanted(torch.device("meta")) and not wanted("cuda:0")
    monkeypatch.setenv("LABELER_CASCADE", "on")
    assert wanted("cuda:0")
    monkeypatch.setenv("LABELER_CASCADE", "off")
    assert not wanted("cpu")


# ---- --model as a Hub id in the local HF cache ---------------------------------------------------------------------
def hub_cache(root: Path, repo_id: str, model_dir: Path) -> Path:
    """The layout huggingface_hub writes: models--owner--name/{blobs,refs/main,snapshots/<commit>/<files>}."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo / "snapshots" / commit
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(model_dir, snapshot)
    return snapshot


def test_model_hub_id_resolves_from_the_local_cache(tiny_llama, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from labeler.judge.backends.models import model_fingerprint

    snapshot = hub_cache(tmp_path / "hub", "labeler-test/tiny-llama", tiny_llama)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    db, data = tmp_path / "l.duckdb", write_pairs(tmp_path / "d.jsonl", 2)
    run("annotate", data, "--db", db, "--model", "labeler-test/tiny-llama", "-q", ok=True)
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        ids = con.execute("SELECT DISTINCT judge_id FROM judgments").fetchall()
    assert ids == [(f"labeler-test/tiny-llama@{model_fingerprint(snapshot)}",)]


def test_missing_hub_id_is_one_error_line_without_touching_the_network(tmp_path):
    """HF_ENDPOINT points at a socket that accepts connections and never answers: a lookup that went online would
    hang there; the command must end with one Error line naming the id, and no connection may have arrived."""
    trap = socket.socket()
    trap.bind(("127.0.0.1", 0))
    trap.listen(8)
    trap.setblocking(False)
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_ENDPOINT": f"http://127.0.0.1:{trap.getsockname()[1]}"}
    env.pop("HF_HUB_OFFLINE", None)
    labeler = Path(sys.executable).parent / "labeler"
    done = subprocess.run([str(labeler), "annotate", "--db", str(tmp_path / "l.duckdb"), "--model", "nobody/no-such-model"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.startswith("Error: --model nobody/no-such-model: no such local directory, and not in the "
                                  "Hugging Face cache") and done.stderr.count("\n") == 1
    with pytest.raises(BlockingIOError):
        trap.accept()  # nothing connected
    trap.close()
