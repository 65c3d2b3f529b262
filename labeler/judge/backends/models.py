"""Model directories: the default judge model (SmolLM2-135M-Instruct, converted once from the GGUF that weights.py
finds or fetches), the safety checks every `--model PATH` passes, and model fingerprints."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
from pathlib import Path

from filelock import FileLock

from labeler.errors import LabelerError
from labeler.judge.backends.weights import find_gguf
from labeler.paths import atomic_path, cache_root

MODEL_NAME = "smollm2-135m-instruct"
CHATML_TEMPLATE = (  # SmolLM2-Instruct's own template, used only if the GGUF lost it
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # owner/name, as the Hugging Face Hub names models
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_CHUNK = 1 << 20
_digests: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256, so each process hashes once


def _sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _digests:
        h = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
        _digests[key] = h.hexdigest()
    return _digests[key]


def _is_complete(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "model.safetensors").is_file()


def _convert(gguf: Path, out: Path) -> None:
    """Dequantize the GGUF into a float32 safetensors model + tokenizer with a chat template, in `out`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    src, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=name)
    # Without dequantize=True the model keeps a GGUF quantizer attached and save_pretrained refuses it.
    model = AutoModelForCausalLM.from_pretrained(
        src, gguf_file=name, dtype=torch.float32, quantization_config=GgufConfig(dequantize=True)
    )
    if not tokenizer.chat_template:
        tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.model_max_length = model.config.max_position_embeddings  # the GGUF leaves it "unlimited"
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)  # transformers 5 always writes safetensors
    tokenizer.save_pretrained(out)


def default_model_dir(cache_dir: Path | None = None) -> Path:
    """A local HF model dir for the default judge, converted from the GGUF on first use and cached after."""
    gguf = find_gguf()
    models = Path(cache_dir or cache_root()) / "models"
    target = models / f"{MODEL_NAME}-{_sha256(gguf)[:12]}"
    if _is_complete(target):
        return target
    models.mkdir(parents=True, exist_ok=True)
    with FileLock(models / f".{target.name}.lock"):  # one converter at a time; the others wait, then find it done
        if _is_complete(target):
            return target
        shutil.rmtree(target, ignore_errors=True)  # an incomplete one, left by a killed run of an older labeler
        print(f"labeler: converting the default model to {target} (once, about 20 s)", file=sys.stderr)
        with atomic_path(target) as tmp:  # a killed conversion leaves no half model behind
            _convert(gguf, tmp)
    return target


def resolve_model(model: str | Path | None) -> tuple[Path, str]:
    """(local directory, name for the model id) of `--model`: None is the default model; a path that exists is
    itself; an `owner/name` that is no local path is a Hub id looked up in the local Hugging Face cache
    (`HF_HUB_CACHE`), never downloaded."""
    if model is None:
        path = default_model_dir()
        return path, path.name
    path = Path(model)
    if path.exists() or not HUB_ID.match(str(model)):
        return path, path.name
    return hub_snapshot(str(model)), str(model)


def hub_snapshot(repo_id: str) -> Path:
    """The cached snapshot of a Hub model (its `main` revision), offline: a missing one is a LabelerError at once."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        raise LabelerError(f"--model {repo_id}: no such local directory, and not in the Hugging Face cache "
                           f"({constants.HF_HUB_CACHE}); labeler never downloads models: fetch it first with "
                           f"`hf download {repo_id}` (or set HF_HUB_CACHE)") from None


def check_model_dir(path: Path) -> None:
    """Refuse a `--model` dir that is missing, has no safetensors weights, or needs remote code."""
    path = Path(path)
    if not path.exists():
        raise LabelerError(f"model path {path} does not exist")
    if not path.is_dir():
        raise LabelerError(f"model path {path} is not a directory")
    if not (path / "config.json").is_file() and (path / "adapter_config.json").is_file():
        return _check_adapter_dir(path)
    if not (path / "config.json").is_file() and (path / "probe_config.json").is_file():
        return _check_probe_dir(path)
    if not (path / "config.json").is_file():
        raise LabelerError(f"model path {path} has no config.json (is it a Hugging Face model directory?)")
    if not any(path.glob("*.safetensors")):
        if any(f.suffix in PICKLE_SUFFIXES for f in path.iterdir()):
            raise LabelerError(f"refusing pickle weights in {path}: labeler loads only *.safetensors")
        raise LabelerError(f"model path {path} has no *.safetensors weights")
    for name in ("config.json", "tokenizer_config.json"):
        _refuse_remote_code(path, name)


def _check_adapter_dir(path: Path) -> None:
    """A LoRA judge version: safetensors adapter weights, a local base model that passes the same checks."""
    from labeler.judge.backends.adapters import adapter_base

    if not (path / "adapter_model.safetensors").is_file():
        if any(f.suffix in PICKLE_SUFFIXES for f in path.iterdir()):
            raise LabelerError(f"refusing pickle weights in {path}: labeler loads only *.safetensors")
        raise LabelerError(f"adapter path {path} has no adapter_model.safetensors")
    base = adapter_base(path)
    if not base.is_dir():
        raise LabelerError(f"adapter path {path}: its base model {base} is not a local directory")
    check_model_dir(base)
    _refuse_remote_code(path, "tokenizer_config.json")


def _check_probe_dir(path: Path) -> None:
    """A Bradley-Terry probe version: its safetensors head, a local base model that passes the same checks."""
    from labeler.judge.backends.probe import HEAD, probe_base

    if not (path / HEAD).is_file():
        raise LabelerError(f"probe path {path} has no {HEAD}")
    base = probe_base(path)
    if not base.is_dir():
        raise LabelerError(f"probe path {path}: its base model {base} is not a local directory")
    check_model_dir(base)


def _refuse_remote_code(path: Path, name: str) -> None:
    file = path / name
    try:
        data = json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LabelerError(f"model path {path}: cannot read {name}: {e}") from None
    if isinstance(data, dict) and "auto_map" in data:
        raise LabelerError(f"refusing trust_remote_code: {path / name} has auto_map (custom model code)")


def model_fingerprint(path: Path) -> str:
    """12 hex chars of sha256 over config.json (or a LoRA's adapter_config.json, a probe's probe_config.json) and
    each safetensors' head."""
    path = Path(path)
    names = ("config.json", "adapter_config.json", "probe_config.json")
    config = next((path / n for n in names if (path / n).is_file()), None)
    if config is None:
        raise LabelerError(f"model path {path} has none of {', '.join(names)}")
    h = hashlib.sha256(config.read_bytes())
    for weights in sorted(path.glob("*.safetensors")):
        h.update(f"\0{weights.name}\0{weights.stat().st_size}\0".encode())
        with weights.open("rb") as f:
            h.update(f.read(_CHUNK))
    return h.hexdigest()[:12]
