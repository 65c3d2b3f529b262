"""default_model: --model safety checks, fingerprints, and the one-time GGUF -> safetensors conversion."""

import json
import re

import pytest
import torch

from labeler.errors import LabelerError
from labeler.judge.backends import models as default_model
from labeler.judge.backends.models import check_model_dir, default_model_dir, model_fingerprint

torch.set_num_threads(1)


def make_model_dir(path, config=None, weights=("model.safetensors",)):
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config or {"model_type": "llama"}))
    for name in weights:
        (path / name).write_bytes(bytes(range(256)) * 16)
    return path


def test_accepts_plain_and_sharded_safetensors_and_fingerprints_every_shard(tmp_path):
    assert check_model_dir(make_model_dir(tmp_path / "one")) is None  # no LabelerError
    sharded = make_model_dir(tmp_path / "two", weights=("model-00001-of-00002.safetensors",
                                                        "model-00002-of-00002.safetensors"))
    assert check_model_dir(sharded) is None
    before = model_fingerprint(sharded)
    (sharded / "model-00002-of-00002.safetensors").write_bytes(bytes(range(255, -1, -1)) * 16)
    assert model_fingerprint(sharded) != before  # the second shard is part of the judge's identity


@pytest.mark.parametrize("case, match", [
    ("missing", "does not exist"),
    ("file", "is not a directory"),
    ("no_config", "no config.json"),
    ("no_weights", r"no \*\.safetensors"),
    ("pickle_only", "refusing pickle weights"),
    ("auto_map", "refusing trust_remote_code"),
    ("tokenizer_auto_map", "refusing trust_remote_code"),
    ("bad_json", "cannot read config.json"),
])
def test_check_model_dir_refusals(tmp_path, case, match):
    path = tmp_path / "model"
    if case == "file":
        path.write_text("not a dir")
    elif case == "no_config":
        make_model_dir(path).joinpath("config.json").unlink()
    elif case == "no_weights":
        make_model_dir(path, weights=())
    elif case == "pickle_only":
        make_model_dir(path, weights=("pytorch_model.bin",))
    elif case == "auto_map":
        make_model_dir(path, config={"model_type": "x", "auto_map": {"AutoModel": "modeling_x.XModel"}})
    elif case == "tokenizer_auto_map":
        make_model_dir(path).joinpath("tokenizer_config.json").write_text(json.dumps({"auto_map": {}}))
    elif case == "bad_json":
        make_model_dir(path).joinpath("config.json").write_text("{not json")
    with pytest.raises(LabelerError, match=match) as err:
        check_model_dir(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_fingerprint_is_stable_and_tracks_weights_and_config(tmp_path):
    path = make_model_dir(tmp_path / "m")
    first = model_fingerprint(path)
    assert re.fullmatch(r"[0-9a-f]{12}", first)
    assert model_fingerprint(path) == first
    assert model_fingerprint(make_model_dir(tmp_path / "copy")) == first  # content, not location

    weights = path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[100] ^= 1
    weights.write_bytes(bytes(data))
    changed = model_fingerprint(path)
    assert changed != first
    data[100] ^= 1
    weights.write_bytes(bytes(data))
    assert model_fingerprint(path) == first

    (path / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 8}))
    assert model_fingerprint(path) not in (first, changed)


def test_fingerprint_of_lora_adapter_dir(tmp_path):
    path = tmp_path / "adapter"
    path.mkdir()
    (path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8}))
    (path / "adapter_model.safetensors").write_bytes(b"\x00" * 64)
    first = model_fingerprint(path)
    assert model_fingerprint(path) == first
    (path / "adapter_model.safetensors").write_bytes(b"\x00" * 63 + b"\x01")
    assert model_fingerprint(path) != first
    with pytest.raises(LabelerError, match="none of config.json"):
        model_fingerprint(tmp_path)


def test_cache_root_env_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("LABELER_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_model.cache_root() == tmp_path / "xdg" / "labeler"
    monkeypatch.setenv("LABELER_CACHE_DIR", str(tmp_path / "mine"))
    assert default_model.cache_root() == tmp_path / "mine"


@pytest.mark.real_model
def test_default_model_converts_once_and_loads(tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("LABELER_CACHE_DIR", str(tmp_path / "cache"))
    path = default_model_dir(tmp_path / "cache")
    assert path.parent == tmp_path / "cache" / "models" and path.name.startswith("smollm2-135m-instruct-")
    assert (path / "model.safetensors").is_file() and not list(path.glob("*.bin"))
    assert [p.name for p in path.parent.iterdir() if ".tmp-" in p.name] == []
    check_model_dir(path)

    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert default_model_dir() == path  # via $LABELER_CACHE_DIR, no reconversion
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp

    tokenizer = AutoTokenizer.from_pretrained(path)
    assert tokenizer.chat_template and tokenizer.eos_token == "<|im_end|>"
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False,
                                         add_generation_prompt=True)
    assert text.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")

    model = AutoModelForCausalLM.from_pretrained(path, use_safetensors=True, dtype=torch.float32).eval()
    assert model.dtype == torch.float32 and getattr(model, "hf_quantizer", None) is None
    enc = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        logits = model(**enc).logits
    assert logits.shape == (1, enc["input_ids"].shape[1], len(tokenizer))
    assert torch.isfinite(logits).all()
