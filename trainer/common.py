"""What every trainer shares: where training starts from, loading it, LoRA, resuming, saving a judge dir."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from labeler.paths import atomic_path
from trainer.config import _TrainConfig


@dataclass(frozen=True)
class StartPoint:
    """The judge a run trains from: a plain model dir, or a registered version (LoRA adapter or full weights)."""

    judge_dir: Path  # what a backend loads to judge with it
    base_model: Path  # full weights (the adapter's base, or judge_dir itself)
    adapter: Path | None = None  # LoRA adapter to continue from
    version: str | None = None  # registered version name, None for a plain model dir

    @classmethod
    def of(cls, judge_dir: Path, version: str | None = None) -> "StartPoint":
        from labeler.judge.backends.adapters import adapter_base, is_adapter_dir
        from labeler.judge.backends.probe import is_probe_dir, probe_base

        judge_dir = Path(judge_dir).resolve()
        if is_adapter_dir(judge_dir):
            return cls(judge_dir, adapter_base(judge_dir).resolve(), judge_dir, version)
        if is_probe_dir(judge_dir):  # a head on a frozen base (the reward backend loads it)
            return cls(judge_dir, probe_base(judge_dir).resolve(), None, version)
        return cls(judge_dir, judge_dir, None, version)


def quiet_transformers() -> None:
    import warnings

    from transformers.utils import logging as hf_logging

    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()


def tokenizer_for(start: StartPoint):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(start.judge_dir, trust_remote_code=False)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def load_policy(start: StartPoint, cfg: _TrainConfig):
    """The causal LM to train: base weights, plus the start's adapter (kept trainable with LoRA, merged with full)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(start.base_model, dtype=torch.float32, use_safetensors=True,
                                                 trust_remote_code=False)
    if start.adapter is None:
        return model
    if cfg.full:
        return PeftModel.from_pretrained(model, str(start.adapter)).merge_and_unload()
    return PeftModel.from_pretrained(model, str(start.adapter), is_trainable=True)


def lora_config(cfg: _TrainConfig, task_type: str = "CAUSAL_LM"):
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=cfg.target_modules(), task_type=task_type)


def last_checkpoint(output_dir: Path) -> str | None:
    """The newest complete TRL checkpoint. The Trainer writes `trainer_state.json` last, so a checkpoint without a
    readable one was cut short by a kill: it is removed, and the one before is used."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in output_dir.iterdir() if (m := re.fullmatch(r"checkpoint-(\d+)", p.name))]
    for _, path in sorted(found, reverse=True):
        try:
            json.loads((path / "trainer_state.json").read_text())
            return str(path)
        except (OSError, ValueError):
            shutil.rmtree(path, ignore_errors=True)
    return None


def train_and_save(trainer, checkpoints: Path, model_dir: Path, tokenizer, base_model: Path) -> dict:
    """Train (resuming from the last checkpoint in `checkpoints`, if any), then write the judge dir atomically:
    a LoRA adapter (its base recorded as an absolute path) or full safetensors weights, plus the tokenizer."""
    from transformers.trainer_callback import PrinterCallback

    if trainer.args.disable_tqdm:  # --quiet: no per-step log lines either
        trainer.remove_callback(PrinterCallback)
    resume = last_checkpoint(checkpoints)
    result = trainer.train(resume_from_checkpoint=resume)
    model = trainer.model
    shutil.rmtree(model_dir, ignore_errors=True)
    with atomic_path(model_dir) as tmp:
        if hasattr(model, "peft_config"):
            model.save_pretrained(str(tmp), selected_adapters=["default"])
            config_path = tmp / "adapter_config.json"
            config = json.loads(config_path.read_text())
            config["base_model_name_or_path"] = str(Path(base_model).resolve())
            config_path.write_text(json.dumps(config, indent=2, sort_keys=True))
        else:
            model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        for stray in ("README.md",):
            (tmp / stray).unlink(missing_ok=True)
    return {"train_loss": result.training_loss, "steps": result.global_step, "resumed_from": resume,
            **{k: v for k, v in result.metrics.items() if isinstance(v, (int, float))}}


def trainable_parameters(model) -> dict:
    """name -> detached copy of every trainable parameter (tests check that each one changed)."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
