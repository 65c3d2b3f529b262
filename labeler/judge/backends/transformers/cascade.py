"""Shared-prefix ("cascade") attention for decoding many samples of the same prompts.

After the prefill, a prompt's keys and values are kept once, not once per sample. Each decode step's
attention is split in two: the queries of all samples of a prompt attend to that prompt's cached prefix in
one matrix product (the prefix is read once per prompt, not once per sample), each sample attends to its own
generated suffix, and one softmax runs over the concatenated scores. With K = 8 samples of a 500-token
prompt, repeating the prefix per sample made attention a fifth of a decode step on this CPU (torch profiler).

The attention function is registered with transformers under `labeler_cascade`; it reads the cache given to
`forward(model, cache, ...)` and is plain SDPA in any other call.
"""

import copy
import os
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from transformers import AttentionInterface
from transformers.cache_utils import DynamicCache, DynamicLayer
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

NAME = "labeler_cascade"
ENV = "LABELER_CASCADE"
_active: ContextVar["CascadeCache | None"] = ContextVar("labeler_cascade", default=None)


class CascadeLayer(DynamicLayer):
    """One layer: the prompts' prefix keys/values (prompts x heads x prefix x dim), shared, and a preallocated
    suffix buffer with one row per sample."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, rows: int, capacity: int):
        super().__init__()
        self.prefix_keys, self.prefix_values = keys, values
        _, heads, _, dim = keys.shape
        self._keys = keys.new_empty(rows, heads, capacity, dim)
        self._values = values.new_empty(rows, heads, capacity, dim)
        self.length = 0
        self.dtype, self.device, self.is_initialized = keys.dtype, keys.device, True
        self._refresh()

    def _refresh(self) -> None:
        self.keys, self.values = self._keys[:, :, : self.length], self._values[:, :, : self.length]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        end = self.length + key_states.shape[-2]
        if end > self._keys.shape[2]:
            raise RuntimeError(f"KV cache capacity {self._keys.shape[2]} exceeded ({end} tokens)")
        self._keys[:, :, self.length : end] = key_states
        self._values[:, :, self.length : end] = value_states
        self.length = end
        self._refresh()
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.prefix_keys.shape[2] + self.length

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._keys, self._values = self._keys[indices], self._values[indices]
        self._refresh()

    def batch_repeat_interleave(self, repeats: int) -> None:
        raise NotImplementedError("a cascade cache is built with its repeats (CascadeCache.from_prefill)")

    def crop(self, tokens_to_remove: int) -> None:
        raise NotImplementedError("a cascade cache is not cropped")


class CascadeCache(DynamicCache):
    """`group[row]` is the prompt of each sample row (rows of a prompt are adjacent), the same in every layer;
    `slot[row]` is the row's index among its prompt's rows and `width` the most rows one prompt has."""

    @classmethod
    def from_prefill(cls, cache: DynamicCache, repeats: int, capacity: int) -> "CascadeCache":
        """`repeats` sample rows per prefilled prompt, each with room for `capacity` generated tokens."""
        out = cls()
        prompts = cache.layers[0].keys.shape[0]
        out.layers = [CascadeLayer(layer.keys, layer.values, prompts * repeats, capacity) for layer in cache.layers]
        device = cache.layers[0].keys.device
        out._regroup(torch.arange(prompts, device=device).repeat_interleave(repeats), prompts)
        return out

    def _regroup(self, group: torch.Tensor, prompts: int) -> None:
        counts = torch.bincount(group, minlength=prompts)
        starts = counts.cumsum(0) - counts
        self.group, self.prompts = group, prompts
        self.slot, self.width = torch.arange(len(group), device=group.device) - starts[group], int(counts.max())

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        super().batch_select_indices(indices)
        self._regroup(self.group[indices], self.prompts)


def select_rows(cache: DynamicCache, indices: torch.Tensor) -> DynamicCache:
    """A new cache holding copies of the `indices` rows (a cascade cache shares its prefixes); `cache` is unchanged."""
    out = copy.copy(cache)
    out.layers = [copy.copy(layer) for layer in cache.layers]
    out.batch_select_indices(indices)
    return out


def cascade_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    cache = _active.get()
    if cache is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout,
                                      **kwargs)
    layer, group, slot, width = cache.layers[module.layer_idx], cache.group, cache.slot, cache.width
    rows, heads, q_len, dim = query.shape
    prompts, kv_heads, prefix_len, _ = layer.prefix_keys.shape
    rep = heads // kv_heads
    scale = scaling if scaling is not None else dim**-0.5
    q = query.reshape(rows, kv_heads, rep * q_len, dim)  # heads sharing a kv head sit together
    padded = q.new_zeros(prompts, width, kv_heads, rep * q_len, dim)
    padded[group, slot] = q
    padded = padded.permute(0, 2, 1, 3, 4).reshape(prompts, kv_heads, width * rep * q_len, dim)
    prefix_scores = (padded @ layer.prefix_keys.transpose(-1, -2)) * scale
    prefix_scores = prefix_scores.reshape(prompts, kv_heads, width, rep * q_len, prefix_len)
    prefix_scores = prefix_scores.permute(0, 2, 1, 3, 4)[group, slot]  # rows x kv_heads x rep*q x prefix
    suffix_scores = (q @ key.transpose(-1, -2)) * scale
    scores = torch.cat([prefix_scores, suffix_scores], dim=-1).reshape(rows, kv_heads, rep, q_len, -1)
    if attention_mask is not None:  # rows x 1 x q x (prefix + suffix), True = attend (sdpa_mask)
        allowed = attention_mask[:, :, None] if attention_mask.dtype == torch.bool else attention_mask[:, :, None] == 0
        scores = scores.masked_fill(~allowed, float("-inf"))
    elif q_len > 1:  # no padding anywhere: the mask was left to causality, which binds only among the new tokens
        new = torch.ones(q_len, q_len, dtype=torch.bool, device=scores.device).triu(1)
        scores[..., -q_len:] = scores[..., -q_len:].masked_fill(new, float("-inf"))
    weights = torch.softmax(scores, dim=-1).reshape(rows, kv_heads, rep * q_len, -1)
    prefix_weights, suffix_weights = weights[..., :prefix_len], weights[..., prefix_len:]
    spread = prefix_weights.new_zeros(prompts, width, kv_heads, rep * q_len, prefix_len)
    spread[group, slot] = prefix_weights
    spread = spread.permute(0, 2, 1, 3, 4).reshape(prompts, kv_heads, width * rep * q_len, prefix_len)
    from_prefix = (spread @ layer.prefix_values).reshape(prompts, kv_heads, width, rep * q_len, dim)
    out = from_prefix.permute(0, 2, 1, 3, 4)[group, slot] + suffix_weights @ value
    return out.reshape(rows, heads, q_len, dim).transpose(1, 2).contiguous(), None


def supports(config) -> bool:
    """Plain causal full attention in every layer (no sliding window, no logit soft-capping): what this
    attention computes. Other models decode over a repeated cache with their own attention."""
    sliding = getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True)
    layer_types = getattr(config, "layer_types", None) or ["full_attention"]
    return (not sliding and getattr(config, "attn_logit_softcapping", None) is None
            and all(t == "full_attention" for t in layer_types))


def wanted(device) -> bool:
    """Whether the sampler decodes over this shared-prefix cache on `device`, or over a cache repeated per sample
    (the batched-`generate` layout, with transformers' own SDPA attention). `LABELER_CASCADE=on|off` decides; by
    default the CPU uses the cascade (measured there: README, Benchmarks) and CUDA the repeated cache, whose fused
    SDPA kernels are the safe choice until `benchmarks/gpu_check.sh` (which times both on the same pairs) shows the
    cascade faster on a GPU. Both give the same samples up to float rounding: the same seeds, the same rules."""
    choice = os.environ.get(ENV, "auto").strip().lower()
    if choice in ("on", "off"):
        return choice == "on"
    return torch.device(device).type == "cpu"


AttentionInterface.register(NAME, cascade_attention)
AttentionMaskInterface.register(NAME, sdpa_mask)


@contextmanager
def cascade_attention_on(model):
    """Inside the block `model` uses cascade attention; outside a `forward` call it is plain SDPA."""
    previous = model.config._attn_implementation
    model.set_attn_implementation(NAME)
    try:
        yield
    finally:
        model.set_attn_implementation(previous)


def forward(model, cache: CascadeCache, **inputs):
    """One model call whose attention reads `cache` as prompt prefixes + per-sample suffixes."""
    token = _active.set(cache)
    try:
        return model(past_key_values=cache, use_cache=True, **inputs)
    finally:
        _active.reset(token)
