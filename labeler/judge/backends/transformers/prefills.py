"""Prompt prefills kept across `generate` calls, so adaptive voting's later rounds do not prefill again.

An adaptive cot run samples a pair's prompts in rounds (judge/adaptive.py); each round is a new `generate` call
on the same prompt texts. Here each prompt's KV cache (every layer, its own tokens only, no padding) and its
last-position logits are kept after the prefill, least recently used first out once `LABELER_PREFILL_CACHE_MB`
(default 2048) is exceeded; a later call on the same token ids assembles its batch cache from them (left padding,
masked as a fresh prefill is) and prefills only the prompts it has not seen. Every prefill of the sampler goes
through here, kept or not: on the CPU the prompts it computes run in groups of similar length, not padded to the
longest; a call that fits one group and keeps nothing is one forward whose cache is used as it is.
"""

import os
from collections import OrderedDict
from dataclasses import dataclass

import torch
from transformers.cache_utils import DynamicCache

from labeler.judge.backends.batching import length_batches

ENV = "LABELER_PREFILL_CACHE_MB"
# prompts per prefill forward on the CPU, sorted by length: 16 judge prompts padded to the longest were a third
# padding (first 32 hh_helpful dev pairs). A GPU takes a call's prompts in one forward, as its kernels prefer.
CPU_GROUP = 4


@dataclass
class Prefill:
    layers: list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values (kv heads x tokens x dim)
    logits: torch.Tensor  # next-token logits after the prompt (vocab)

    @property
    def bytes(self) -> int:
        return sum(k.nbytes + v.nbytes for k, v in self.layers) + self.logits.nbytes


class PrefillStore:
    def __init__(self, budget_mb: float | None = None):
        budget = float(os.environ.get(ENV, "2048")) if budget_mb is None else budget_mb
        self.budget = int(budget * 2**20)
        self._items: OrderedDict[tuple[int, ...], Prefill] = OrderedDict()
        self._bytes = 0
        self.hits = self.misses = 0

    def prefill(self, model, prompts: list[list[int]], ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor,
                keep: bool | list[bool] = True):
        """(cache, last logits) for the left-padded batch `ids`/`mask` of `prompts`, computing only the prompts
        not kept from an earlier call. A prompt's prefill is kept for a later call where `keep` (one flag, or one
        per prompt) says so; otherwise it is dropped once used (its last round)."""
        keys = [tuple(p) for p in prompts]
        keep = [keep] * len(keys) if isinstance(keep, bool) else list(keep)
        missing = [i for i, k in enumerate(keys) if k not in self._items]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        size = CPU_GROUP if ids.device.type == "cpu" else max(1, len(keys))
        if len(missing) == len(keys) <= size and not any(keep):  # one forward is the batch cache: nothing to copy
            out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
            return out.past_key_values, out.logits[:, -1]
        fresh = {}
        for batch in length_batches([len(prompts[i]) for i in missing], size, longest_first=False):
            group = [missing[j] for j in batch]  # similar lengths together: little padding is computed
            cut = max(len(prompts[i]) for i in group)  # the columns that are padding in every row are dropped
            out = model(input_ids=ids[group, -cut:], attention_mask=mask[group, -cut:],
                        position_ids=positions[group, -cut:], use_cache=True, logits_to_keep=1)
            for row, i in enumerate(group):
                n = len(prompts[i])
                layers = [(layer.keys[row, :, -n:].clone(), layer.values[row, :, -n:].clone())
                          for layer in out.past_key_values.layers]
                fresh[keys[i]] = Prefill(layers, out.logits[row, -1].clone())
        items = [fresh.get(k) or self._items[k] for k in keys]
        self.drop([k for k, kept in zip(keys, keep) if not kept])
        for k, kept in zip(keys, keep):
            if not kept:
                continue
            if k in fresh:
                self._put(k, fresh[k])
            elif k in self._items:
                self._items.move_to_end(k)
        return self._assemble(model, items, ids.shape[1]), torch.stack([item.logits for item in items])

    def drop(self, prompts) -> None:
        """Forget the prefills of `prompts` (token ids), where kept."""
        for k in {tuple(p) for p in prompts} & self._items.keys():
            self._bytes -= self._items.pop(k).bytes

    def _put(self, key: tuple[int, ...], item: Prefill) -> None:
        if item.bytes > self.budget:
            return
        self._items[key] = item
        self._bytes += item.bytes
        while self._bytes > self.budget:
            _, old = self._items.popitem(last=False)
            self._bytes -= old.bytes

    @staticmethod
    def _assemble(model, items: list[Prefill], width: int) -> DynamicCache:
        data = []
        for layer in range(len(items[0].layers)):
            k0 = items[0].layers[layer][0]
            heads, _, dim = k0.shape
            keys = k0.new_zeros(len(items), heads, width, dim)
            values = k0.new_zeros(len(items), heads, width, dim)
            for row, item in enumerate(items):
                k, v = item.layers[layer]
                keys[row, :, width - k.shape[1]:] = k
                values[row, :, width - v.shape[1]:] = v
            data.append((keys, values))
        return DynamicCache(ddp_cache_data=data, config=model.config)
