"""Starter judges for the tiny Llama, laid out as labeler ships one (a LoRA adapter or a bt-probe head, with a
manifest), for tests."""

import hashlib
import json
from pathlib import Path


def ship_tiny_starter(tmp_path: Path, tiny_llama: Path, monkeypatch) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from labeler.judge.backends import models

    shipped = tmp_path / "shipped-starter"
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    lora = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.save_pretrained(shipped)
    manifest = {"name": "starter",
                "adapter_sha256": hashlib.sha256((shipped / "adapter_model.safetensors").read_bytes()).hexdigest(),
                "base_model": {"name": "tiny", "fingerprint": models.model_fingerprint(tiny_llama)}}
    return _install(shipped, manifest, tmp_path, tiny_llama, monkeypatch, method="genrm-sft", weights="lora",
                    backend="transformers")


def ship_tiny_probe_starter(tmp_path: Path, tiny_llama: Path, monkeypatch) -> dict:
    """The starter as this release ships it, for the tiny Llama: a bt-probe head (random weights) on its first
    block, judged by the reward backend; temperature 2."""
    import torch

    from labeler.judge.backends import models
    from labeler.judge.backends.probe import CONFIG, ProbeHead

    shipped = tmp_path / "shipped-starter"
    shipped.mkdir()
    hidden = json.loads((tiny_llama / "config.json").read_text())["hidden_size"]
    ProbeHead({"scale": torch.ones(hidden), "w_help": torch.randn(hidden, generator=torch.Generator().manual_seed(0))}
              ).save(shipped)
    (shipped / CONFIG).write_text(json.dumps({"base_model_name_or_path": "tiny", "layers": 1, "max_tokens": 64,
                                              "bf16": False}))
    manifest = {"name": "starter", "kind": "probe",
                "base_model": {"name": "tiny", "fingerprint": models.model_fingerprint(tiny_llama)}}
    return _install(shipped, manifest, tmp_path, tiny_llama, monkeypatch, method="bt-probe", weights="head",
                    backend="reward")


def _install(shipped: Path, manifest: dict, tmp_path: Path, tiny_llama: Path, monkeypatch, **judge) -> dict:
    """Make `shipped` this install's starter (the tiny Llama as the default model) and complete its manifest with
    the judge record (`judge`: method, weights, backend) and a shipped temperature of 2."""
    from labeler.judge.backends import models, starter

    (shipped / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("LABELER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(starter, "_shipped", lambda: shipped)
    for module in (starter, models):  # every place the default model is looked up (backends: models.resolve_model)
        monkeypatch.setattr(module, "default_model_dir", lambda cache_dir=None: tiny_llama)
    judge_dir = starter.starter_dir()
    judge_id = f"{judge_dir.name}@{models.model_fingerprint(judge_dir)}"
    manifest["judge"] = {
        "version": "starter", "parent": None, "start_judge_id": "tiny@0", "base_model": "tiny", "path": str(shipped),
        "mode": "direct", "samples": 1, "judge_id": judge_id, "heldout_n": 10, "heldout_agreement": 0.6,
        "parent_agreement": 0.5, "promoted": True, "active": False, "created_at": "2026-11-28T00:00:00", **judge}
    manifest["calibration"] = {"judge_id": judge_id, "mode": "direct", "samples": 1, "temperature": 2.0,
                               "n_pairs": 10, "fitted_on": "10 held-out pairs", "fitted_at": "2026-11-28T00:00:00"}
    (shipped / "manifest.json").write_text(json.dumps(manifest))
    return manifest
