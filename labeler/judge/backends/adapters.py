"""Judge versions saved as LoRA adapters (`labeler retrain`): a dir with adapter_config.json and
adapter_model.safetensors (plus the tokenizer), whose base model path is recorded in adapter_config.json.
Loaded as base + adapter, merged for inference speed."""

import json
from pathlib import Path

from labeler.errors import LabelerError
from labeler.extras import require


def is_adapter_dir(path: Path) -> bool:
    path = Path(path)
    return (path / "adapter_config.json").is_file() and not (path / "config.json").is_file()


def adapter_base(path: Path) -> Path:
    """The base model directory the adapter was trained on."""
    try:
        config = json.loads((Path(path) / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LabelerError(f"{path}: cannot read adapter_config.json: {e}") from None
    base = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    if not base:
        raise LabelerError(f"{path}: adapter_config.json names no base_model_name_or_path")
    return Path(path) / base if not Path(base).is_absolute() else Path(base)  # relative: to the adapter dir


def load_adapter_model(path: Path, auto_class=None, **kwargs):
    """Base model + LoRA adapter, merged (`merge_and_unload`), fp32 on the CPU."""
    require("train", f"the LoRA judge version {path}")
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    auto_class = auto_class or AutoModelForCausalLM
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # a reward head is "newly initialized" before the adapter brings its weights
    try:
        base = auto_class.from_pretrained(adapter_base(path), dtype=torch.float32, use_safetensors=True,
                                          trust_remote_code=False, **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)
    return PeftModel.from_pretrained(base, str(path)).merge_and_unload()
