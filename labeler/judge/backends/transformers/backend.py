"""The default backend: a local Hugging Face causal LM on the CPU or a CUDA GPU (`device`), batched with left padding.

Weights in `dtype` (default: float32 on the CPU, bfloat16 on CUDA; bfloat16 also runs about twice as fast on CPUs
with avx512_bf16/AMX); the verdict-token logits and log-probs are always computed in float32 from the last hidden
state. Every tensor is made on the model's device; the per-sample random numbers are drawn on the CPU, so a sample's
text depends on its seed, not on the device's generator."""

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from labeler.errors import LabelerError
from labeler.judge.backends.adapters import is_adapter_dir, load_adapter_model
from labeler.judge.backends.base import Completion, SamplingParams, default_seeds, defuse_special_tokens
from labeler.judge.backends.batching import CPU_ROWS, length_batches
from labeler.judge.backends.devices import resolve_device, resolve_dtype
from labeler.judge.backends.transformers.chains import Chain, ChainSampler, left_pad, positions_from_mask
from labeler.judge.backends.models import check_model_dir, model_fingerprint, resolve_model
from labeler.judge.parse import parse_verdict

FORCE_SUFFIX = "\nVerdict: "
MIN_SHARED_PREFIX = 16  # tokens; below this a shared prefill is not worth the cache copy
TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return min(n, len(a) - 1, len(b) - 1)  # every member keeps at least one token of its own to read logits at


class TransformersBackend:
    cpu_rows: float = CPU_ROWS

    def __init__(self, model: str | Path | None = None, batch_size: int = 8, max_sequences: int = 128,
                 dtype: str | None = None, device: str | None = "auto", **_: object):
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.path = model or None
        self.batch_size = batch_size
        self.max_sequences = max_sequences
        self.model_id = ""
        self._model = None
        self._head = None  # the output layer's weight in float32, for the verdict logits
        self._samplers: dict = {}
        self.tokenizer = None

    def load(self) -> None:
        if self.tokenizer is not None:
            return
        hf_logging.disable_progress_bar()
        path, name = resolve_model(self.path)
        check_model_dir(path)
        self.model_id = f"{name}@{model_fingerprint(path)}"
        self._resolved = path
        self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if not self.tokenizer.chat_template:
            raise LabelerError(f"{path}: the tokenizer has no chat template; labeler needs an instruct model")

    @property
    def model(self):
        """Weights load on first use, so a run with nothing to judge never pays for them."""
        if self._model is None:
            if is_adapter_dir(self._resolved):  # a LoRA judge version (labeler retrain)
                model = load_adapter_model(self._resolved).to(self.device, TORCH_DTYPES[self.dtype])
            else:
                model = AutoModelForCausalLM.from_pretrained(
                    self._resolved, dtype=TORCH_DTYPES[self.dtype], use_safetensors=True, trust_remote_code=False
                ).to(self.device)
            self._model = model.eval()
        return self._model

    def _padded(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        return left_pad(rows, self.tokenizer.pad_token_id, self.device)

    def _verdict_logits(self, **inputs) -> torch.Tensor:
        """float32 logits of the last position, read from the decoder's last hidden state."""
        if self._head is None:
            self._head = self.model.get_output_embeddings().weight.float()
        hidden = self.model.get_decoder()(use_cache=False, **inputs).last_hidden_state[:, -1]
        return hidden.float() @ self._head.T

    def render_chat(self, system: str, user: str, assistant_prefix: str) -> str:
        messages = [{"role": "system", "content": defuse_special_tokens(self.tokenizer, system)},
                    {"role": "user", "content": defuse_special_tokens(self.tokenizer, user)}]
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return text + assistant_prefix

    def choice_ids(self, choices: tuple[str, str]) -> list[int]:
        ids = [self.tokenizer.encode(c, add_special_tokens=False) for c in choices]
        if any(len(i) != 1 for i in ids):
            raise LabelerError(f"verdict choices {choices} are not single tokens for this tokenizer")
        return [i[0] for i in ids]

    @torch.inference_mode()
    def verdict_logprobs(self, prompts: list[str], choices: tuple[str, str]) -> list[tuple[float, float]]:
        """Adjacent prompts that share a long token prefix (a pair's two orders) prefill it once."""
        ids = self.choice_ids(choices)
        encoded = [self.tokenizer.encode(p, add_special_tokens=False) for p in prompts]
        groups = self._prefix_groups(encoded)
        out: list[tuple[float, float]] = [(0.0, 0.0)] * len(prompts)
        for batch in self._direct_batches([sum(len(encoded[i]) for i in g) for g in groups]):
            chosen = [groups[g] for g in batch]
            logprobs = self._shared_prefix_logprobs([[encoded[i] for i in g] for g in chosen], ids)
            for row, i in enumerate(i for g in chosen for i in g):
                out[i] = logprobs[row]
        return out

    def _direct_batches(self, lengths: list[int]) -> list[list[int]]:
        """Index batches of prompt groups (by their token counts): batch_size // 2 groups at most, and on the CPU
        no more once a batch holds `cpu_rows` tokens (batching.CPU_ROWS)."""
        return length_batches(lengths, self.batch_size // 2 or 1, self.cpu_rows if self.device == "cpu" else None)

    def _prefix_groups(self, encoded: list[list[int]]) -> list[list[int]]:
        """Group prompts (2i, 2i+1) when they share at least MIN_SHARED_PREFIX tokens, else keep them alone."""
        groups = []
        for i in range(0, len(encoded) - 1, 2):
            if _common_prefix(encoded[i], encoded[i + 1]) >= MIN_SHARED_PREFIX:
                groups.append([i, i + 1])
            else:
                groups += [[i], [i + 1]]
        if len(encoded) % 2:
            groups.append([len(encoded) - 1])
        return groups

    def _shared_prefix_logprobs(self, groups: list[list[list[int]]], choice_ids: list[int]) -> list[tuple[float, float]]:
        """Prefill each group's common prefix once, repeat its KV cache per member, then feed the suffixes.
        Groups of one member (or a batch with mixed sizes) fall back to a plain padded forward."""
        if any(len(g) != 2 for g in groups):
            rows = [seq for g in groups for seq in g]
            return self._last_logprobs(*self._padded(rows), None, choice_ids)
        shared = [_common_prefix(a, b) for a, b in groups]
        ids, mask = self._padded([a[:n] for (a, _), n in zip(groups, shared)])
        cache = self.model.get_decoder()(input_ids=ids, attention_mask=mask, position_ids=positions_from_mask(mask),
                                         use_cache=True).past_key_values
        cache.batch_repeat_interleave(2)
        suffixes = [seq[n:] for g, n in zip(groups, shared) for seq in g]
        suffix_ids, suffix_mask = self._padded(suffixes)
        mask = torch.cat([mask.repeat_interleave(2, 0), suffix_mask], dim=1)
        return self._last_logprobs(suffix_ids, mask, cache, choice_ids)

    def _last_logprobs(self, ids, mask, cache, choice_ids) -> list[tuple[float, float]]:
        positions = positions_from_mask(mask)[:, -ids.shape[1]:]
        logits = self._verdict_logits(input_ids=ids, attention_mask=mask, position_ids=positions,
                                      past_key_values=cache)
        logprobs = torch.log_softmax(logits, dim=-1)[:, choice_ids]
        return [(float(a), float(b)) for a, b in logprobs.tolist()]

    def generate(self, prompts: list[str], n: int, params: SamplingParams, choices: tuple[str, str], marker: str,
                 seeds: list[list[int]] | None = None) -> list[list[Completion]]:
        sampler = self._sampler(choices, marker)
        encoded = [self.tokenizer.encode(p, add_special_tokens=False) for p in prompts]
        seeds = seeds or default_seeds(params.seed, len(prompts), n)
        out: list[list[Completion]] = [[] for _ in prompts]
        keep = params.keep_prompts
        for batch in length_batches([len(p) for p in prompts], max(1, self.max_sequences // n)):
            chains = sampler.sample([encoded[i] for i in batch], n, params.max_new_tokens, params.temperature,
                                    params.top_p, [seeds[i] for i in batch], force=params.force_verdict,
                                    on_finish=params.on_sample,
                                    keep_prompts=keep if isinstance(keep, bool) else [keep[i] for i in batch])
            for i, samples in zip(batch, chains):
                out[i] = [self._completion(c) for c in samples]
        return out

    def forget(self, prompts: list[str]) -> None:
        """Drop the prefills kept for `prompts` (their pairs stopped before the rounds they were kept for)."""
        encoded = [self.tokenizer.encode(p, add_special_tokens=False) for p in prompts]
        for sampler in self._samplers.values():
            sampler.prefills.drop(encoded)

    def _sampler(self, choices: tuple[str, str], marker: str) -> ChainSampler:
        key = (choices, marker)
        if key not in self._samplers:
            eos = self._eos()
            eos_ids = set(eos if isinstance(eos, list) else [eos])
            self._samplers[key] = ChainSampler(self.model, self.tokenizer, self.choice_ids(choices), marker,
                                               FORCE_SUFFIX + marker, eos_ids)
        return self._samplers[key]

    def _completion(self, chain: Chain) -> Completion:
        text = self.tokenizer.decode(chain.tokens, skip_special_tokens=True)
        if chain.verdict is not None and parse_verdict(text) is None:
            text = text.rstrip("]") + "]]"  # the sample ended inside its closing marker
        return Completion(text=text, verdict_logprobs=chain.logprobs, forced=chain.forced)

    def _eos(self) -> int | list[int]:
        return self.model.generation_config.eos_token_id or self.tokenizer.eos_token_id
