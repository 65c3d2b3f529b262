"""The default backend: a local Hugging Face causal LM (`backend`), its batched chain sampler (`chains`), the
shared-prefix KV cache (`cascade`) and nucleus sampling (`sampling`). Importing this package loads torch."""

from labeler.judge.backends.transformers.backend import TransformersBackend

__all__ = ["TransformersBackend"]
