"""Lazy registry of judge backends: name -> "module:Class", so heavy imports happen only when used."""

import importlib

from labeler.errors import LabelerError
from labeler.judge.backends.base import Backend, Completion, SamplingParams

BACKENDS = {
    "transformers": "labeler.judge.backends.transformers:TransformersBackend",
    "openai": "labeler.judge.backends.openai_api:OpenAIBackend",  # any OpenAI-compatible server
    "vllm": "labeler.judge.backends.vllm:VLLMBackend",
    "fake": "labeler.judge.backends.fake:FakeBackend",
    "reward": "labeler.judge.backends.reward:RewardBackend",  # Bradley-Terry judge versions (retrain --method bt)
}

__all__ = ["BACKENDS", "Backend", "Completion", "SamplingParams", "make_backend"]


def make_backend(name: str, **kwargs) -> Backend:
    if name not in BACKENDS:
        raise LabelerError(f"unknown backend {name!r} (choose from: {', '.join(BACKENDS)})")
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls)(**kwargs)
