"""Self-consistency sampling that prefills each judge prompt once and decodes its K samples together.

`model.generate(num_return_sequences=K)` copies the prompt K times before the prefill; here the prompt is
encoded once, its KV cache kept once and read by all K samples (judge/backends/cascade.py), and every sample
of every prompt in the batch decodes in one forward pass per step. One verdict rule, the parser's
(`labeler.judge.parse`): the last complete marker `[[A]]`/`[[B]]` of the text counts. A sample runs until it ends
(EOS), runs out of tokens, or closes a marker that ends its line (the template asks for the verdict on its own
line); a marker it writes is kept as its verdict (with the two letters' log-probs at that step) until a later one
replaces it, so a marker quoted inside a sentence neither stops nor decides the sample.
A sample that ends without a marker is forced: the marker is appended and the verdict read from the two
letters' logits. Finished samples (forced on the way out) leave the batch so they cost nothing more.
"""

from contextlib import nullcontext
from dataclasses import dataclass

import torch

from labeler.judge.backends.padding import left_pad, positions_from_mask
from labeler.judge.backends.transformers import cascade
from labeler.judge.backends.transformers.cascade import CascadeCache, select_rows
from labeler.judge.backends.transformers.prefills import PrefillStore
from labeler.judge.backends.transformers.sampling import nucleus_sample

COMPACT_FRACTION = 0.25  # drop finished rows from the KV cache once this share of the batch is done


@dataclass
class Chain:
    tokens: list[int]
    verdict: int | None = None  # index into the choices, None = abstained
    logprobs: tuple[float, float] | None = None
    forced: bool = False
    opened: tuple[int, tuple[float, float], int] | None = None  # a letter after the marker, not yet decided
    done: bool = False  # its verdict marker ended its line


class ChainSampler:
    def __init__(self, model, tokenizer, choice_ids: list[int], marker: str, force_suffix: str, eos_ids: set[int]):
        self.model = model
        self.choice_ids = choice_ids
        self.marker = marker
        self.eos_ids = eos_ids
        self.pad_id = tokenizer.pad_token_id
        self.pieces = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
        self.force_ids = tokenizer.encode(force_suffix, add_special_tokens=False)
        self.shared_prefix = cascade.supports(model.config) and cascade.wanted(model.device)
        self.prefills = PrefillStore()

    def _marker_before(self, tokens: list[int]) -> bool:
        return "".join(self.pieces[t] for t in tokens[-4:]).rstrip().endswith(self.marker)

    def _read(self, chain: Chain, token: int, logprobs: torch.Tensor) -> None:
        """Follow the markers of `chain` after it wrote `token` (already appended): "[[" + letter opens one; "]]"
        right after closes it and makes it the chain's verdict (anything else drops it); a closed marker that ends
        its line ends the sample (`done`), one followed by more text on its line (a quote) lets it go on."""
        if chain.opened is not None:
            verdict, letters, at = chain.opened
            tail = "".join(self.pieces[t] for t in chain.tokens[at:]).lstrip(" ")
            if tail.startswith("]]"):
                chain.verdict, chain.logprobs = verdict, letters
                after = tail[2:].lstrip(" \t")
                if after.startswith(("\n", "\r")):
                    chain.opened, chain.done = None, True
                elif after:
                    chain.opened = None
            elif not "]]".startswith(tail):
                chain.opened = None
        if token in self.choice_ids and self._marker_before(chain.tokens[:-1]):
            letters = (float(logprobs[self.choice_ids[0]]), float(logprobs[self.choice_ids[1]]))
            chain.opened = (self.choice_ids.index(token), letters, len(chain.tokens))

    @staticmethod
    def _close(chain: Chain) -> None:
        """A sample that ends right after a verdict letter (or "]") closes that marker."""
        if chain.opened is not None:
            chain.verdict, chain.logprobs, _ = chain.opened
            chain.opened = None

    @torch.inference_mode()
    def sample(self, prompts: list[list[int]], n: int, max_new_tokens: int, temperature: float, top_p: float,
               seeds: list[list[int]], force: bool = True, on_finish=None, keep_prompts: bool | list[bool] = False
               ) -> list[list[Chain]]:
        """`n` chains per prompt; `seeds[i][j]` drives the randomness of prompt i's sample j and nothing else.
        `on_finish()` is called as each chain ends. With `keep_prompts` (one flag, or one per prompt) the prompts'
        prefills are kept for later calls on the same prompts: the rounds of adaptive voting. Prefills kept by an
        earlier call are used either way (and dropped after a call that does not keep them, the prompts' last
        round)."""
        with cascade.cascade_attention_on(self.model) if self.shared_prefix else nullcontext():
            keep = [keep_prompts] * len(prompts) if isinstance(keep_prompts, bool) else list(keep_prompts)
            return self._sample(prompts, n, max_new_tokens, temperature, top_p, seeds, force, on_finish, keep)

    def _forward(self, cache, **inputs):
        if self.shared_prefix:
            return cascade.forward(self.model, cache, **inputs)
        return self.model(past_key_values=cache, use_cache=True, **inputs)

    def _prefill(self, prompts, ids, mask, keep: list[bool]):
        return self.prefills.prefill(self.model, prompts, ids, mask, positions_from_mask(mask), keep=keep)

    def _sample(self, prompts, n, max_new_tokens, temperature, top_p, seeds, force, on_finish,
                keep: list[bool]) -> list[list[Chain]]:
        device = self.model.device
        ids, mask = left_pad(prompts, self.pad_id, device)
        prefilled, last = self._prefill(prompts, ids, mask, keep)
        logits = last.repeat_interleave(n, 0)
        if self.shared_prefix:
            cache = CascadeCache.from_prefill(prefilled, n, max_new_tokens + len(self.force_ids))
        else:
            cache = prefilled
            cache.batch_repeat_interleave(n)
        mask = mask.repeat_interleave(n, 0)
        next_pos = torch.tensor([len(p) for p in prompts], device=device).repeat_interleave(n)
        chains = [Chain(tokens=[]) for _ in range(len(prompts) * n)]
        rows = list(range(len(chains)))  # batch row -> chain index
        # on the CPU whatever the device: read row by row below, and a GPU tensor read so would sync at each row
        finished = torch.zeros(len(rows), dtype=torch.bool, device="cpu")  # has a verdict, or ended without one
        generators = [torch.Generator().manual_seed(s) for row in seeds for s in row]
        for step in range(max_new_tokens):
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            uniforms = torch.cat([torch.rand(1, generator=generators[c], device="cpu") for c in rows])
            picked = nucleus_sample(logprobs, temperature, top_p, uniforms.to(device))
            tokens = picked.tolist()
            for r, c in enumerate(rows):
                if finished[r]:
                    continue
                token, chain = tokens[r], chains[c]
                if token not in self.eos_ids:
                    chain.tokens.append(token)
                    self._read(chain, token, logprobs[r])
                ended = token in self.eos_ids or chain.done or step == max_new_tokens - 1
                if ended and token not in self.eos_ids and chain.verdict is None and chain.opened is None:
                    chain.tokens.pop()  # never fed to the cache: the forced verdict reads the text shown
                if ended:
                    self._close(chain)
                    if on_finish:
                        on_finish()
                finished[r] = ended
            if bool(finished.all()):
                break
            if int(finished.sum()) >= COMPACT_FRACTION * len(rows):  # finished rows leave the batch
                unforced = [r for r in torch.nonzero(finished).squeeze(1).tolist() if chains[rows[r]].verdict is None]
                if force and unforced:
                    self._force(cache, mask, next_pos, rows, unforced, chains)
                keep = torch.nonzero(~finished).squeeze(1)
                rows = [rows[i] for i in keep.tolist()]
                finished, keep = finished[keep], keep.to(device)
                cache.batch_select_indices(keep)
                picked, mask, next_pos = picked[keep], mask[keep], next_pos[keep]
            feed = (~finished).to(device)  # a finished row's last token is not fed: the cache never sees it
            step_ids = torch.where(feed, picked, torch.full_like(picked, self.pad_id)).unsqueeze(1)
            mask = torch.cat([mask, feed.long().unsqueeze(1)], dim=1)
            out = self._forward(cache, input_ids=step_ids, attention_mask=mask, position_ids=next_pos.unsqueeze(1),
                                logits_to_keep=1)
            logits, next_pos = out.logits[:, -1], next_pos + feed.long()
        pending = [r for r, c in enumerate(rows) if chains[c].verdict is None]
        if force and pending:
            self._force(cache, mask, next_pos, rows, pending, chains)
        return [chains[i * n:(i + 1) * n] for i in range(len(prompts))]

    def _force(self, cache, mask, next_pos, rows, pending, chains) -> None:
        """Append the verdict marker to the `pending` rows' samples and read the two letters' logits (on a copy
        of those rows' cache: the batch goes on decoding)."""
        device = mask.device
        keep = torch.tensor(pending, device=device)
        cache = select_rows(cache, keep)
        mask, next_pos = mask[keep], next_pos[keep]
        suffix = torch.tensor(self.force_ids, device=device).unsqueeze(0).repeat(len(pending), 1)
        mask = torch.cat([mask, torch.ones_like(suffix)], dim=1)
        positions = next_pos.unsqueeze(1) + torch.arange(suffix.shape[1], device=device).unsqueeze(0)
        out = self._forward(cache, input_ids=suffix, attention_mask=mask, position_ids=positions, logits_to_keep=1)
        logprobs = torch.log_softmax(out.logits[:, -1].float(), dim=-1)[:, self.choice_ids].tolist()
        for i, r in enumerate(pending):
            chain = chains[rows[r]]
            la, lb = logprobs[i]
            chain.tokens += self.force_ids + [self.choice_ids[0] if la >= lb else self.choice_ids[1]]
            chain.verdict, chain.logprobs, chain.forced = (0 if la >= lb else 1), (la, lb), True
