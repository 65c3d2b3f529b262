"""Lazy registry of judge backends: name -> "module:Class", so heavy imports happen only when used."""

import importlib

from labeler.errors import LabelerError
from labeler.judge.backends.base import Backend, Completion, SamplingParams

BACKENDS = {
    "transformers": "labeler.judge.backends.transformers:TransformersBackend",
    "openai": "labeler.judge.backends.openai_api:make_openai",  # any OpenAI-compatible server (--api chat|completions)
    "gguf": "labeler.judge.backends.gguf:GGUFBackend",  # a .gguf file in process (llama-cpp-python, the gguf extra)
    "vllm": "labeler.judge.backends.vllm:VLLMBackend",
    "fake": "labeler.judge.backends.fake:FakeBackend",
    "reward": "labeler.judge.backends.reward:RewardBackend",  # Bradley-Terry judge versions (retrain --method bt)
}

__all__ = ["BACKENDS", "Backend", "Completion", "SamplingParams", "make_backend"]


def make_backend(name: str, **kwargs) -> Backend:
    if name == "transformers" and str(kwargs.get("model") or "").lower().endswith(".gguf"):
        name = "gguf"  # `--model judge.gguf` runs in process through llama.cpp
    if name not in BACKENDS:
        raise LabelerError(f"unknown backend {name!r} (choose from: {', '.join(BACKENDS)})")
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls)(**kwargs)
