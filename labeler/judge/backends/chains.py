"""Self-consistency sampling that prefills each judge prompt once and decodes its K samples together.

`model.generate(num_return_sequences=K)` copies the prompt K times before the prefill; here the prompt is
encoded once, its KV cache is repeated K times, and every sample of every prompt in the batch decodes in
one forward pass per step. A sample stops as soon as it writes a verdict letter after the marker; a
sample that ends (EOS) or runs out of tokens without one is forced: the marker is appended and the
verdict read from the two letters' logits. Finished samples leave the batch so they cost nothing more.
"""

from dataclasses import dataclass

import torch
from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

COMPACT_FRACTION = 0.25  # drop finished rows from the KV cache once this share of the batch is done


def left_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists -> (ids, attention mask), padded on the left so every row ends at the last column."""
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        if row:
            ids[r, width - len(row):] = torch.tensor(row)
            mask[r, width - len(row):] = 1
    return ids, mask


def positions_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that skip padding and holes in the mask."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


@dataclass
class Chain:
    tokens: list[int]
    verdict: int | None = None  # index into the choices, None = abstained
    logprobs: tuple[float, float] | None = None
    forced: bool = False


class ChainSampler:
    def __init__(self, model, tokenizer, choice_ids: list[int], marker: str, force_suffix: str, eos_ids: set[int]):
        self.model = model
        self.choice_ids = choice_ids
        self.marker = marker
        self.eos_ids = eos_ids
        self.pad_id = tokenizer.pad_token_id
        self.pieces = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
        self.force_ids = tokenizer.encode(force_suffix, add_special_tokens=False)

    def _marker_before(self, tokens: list[int]) -> bool:
        return "".join(self.pieces[t] for t in tokens[-4:]).rstrip().endswith(self.marker)

    @torch.inference_mode()
    def sample(self, prompts: list[list[int]], n: int, max_new_tokens: int, temperature: float, top_p: float,
               seed: int, force: bool = True) -> list[list[Chain]]:
        ids, mask = left_pad(prompts, self.pad_id)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions_from_mask(mask), use_cache=True,
                         logits_to_keep=1)
        cache, logits = out.past_key_values, out.logits[:, -1].repeat_interleave(n, 0)
        cache.batch_repeat_interleave(n)
        mask = mask.repeat_interleave(n, 0)
        next_pos = torch.tensor([len(p) for p in prompts]).repeat_interleave(n)
        chains = [Chain(tokens=[]) for _ in range(len(prompts) * n)]
        rows = list(range(len(chains)))  # batch row -> chain index
        parked = torch.zeros(len(rows), dtype=torch.bool)  # ended without a verdict: waits for forcing
        done = torch.zeros(len(rows), dtype=torch.bool)  # has a verdict: leaves the batch at the next compaction
        warpers = [TemperatureLogitsWarper(temperature)] if temperature != 1.0 else []
        warpers += [TopPLogitsWarper(top_p)] if top_p < 1.0 else []
        generator = torch.Generator().manual_seed(seed)
        for step in range(max_new_tokens):
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            scores = logprobs
            for warp in warpers:
                scores = warp(None, scores)
            picked = torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=generator).squeeze(1)
            feed = torch.ones(len(rows), dtype=torch.bool)
            for r, c in enumerate(rows):
                if parked[r] or done[r]:
                    feed[r] = False
                    continue
                token, chain = int(picked[r]), chains[c]
                is_verdict = token in self.choice_ids and self._marker_before(chain.tokens)
                if token in self.eos_ids or (step == max_new_tokens - 1 and not is_verdict):
                    parked[r], feed[r] = True, False  # the token is not kept: the cache never saw it
                    continue
                if is_verdict:
                    chain.tokens.append(token)
                    chain.verdict = self.choice_ids.index(token)
                    chain.logprobs = (float(logprobs[r, self.choice_ids[0]]), float(logprobs[r, self.choice_ids[1]]))
                    done[r], feed[r] = True, False
                    continue
                chain.tokens.append(token)
            if bool((parked | done).all()):
                break
            if int(done.sum()) >= COMPACT_FRACTION * len(rows):
                keep = torch.nonzero(~done).squeeze(1)
                cache.batch_select_indices(keep)
                rows = [rows[i] for i in keep.tolist()]
                picked, feed, parked, mask, next_pos = picked[keep], feed[keep], parked[keep], mask[keep], next_pos[keep]
                done = torch.zeros(len(rows), dtype=torch.bool)
            step_ids = torch.where(feed, picked, torch.full_like(picked, self.pad_id)).unsqueeze(1)
            mask = torch.cat([mask, feed.long().unsqueeze(1)], dim=1)
            out = self.model(input_ids=step_ids, attention_mask=mask, position_ids=next_pos.unsqueeze(1),
                             past_key_values=cache, use_cache=True, logits_to_keep=1)
            logits, next_pos = out.logits[:, -1], next_pos + feed.long()
        pending = [r for r, c in enumerate(rows) if chains[c].verdict is None]
        if force and pending:
            self._force(cache, mask, next_pos, rows, pending, chains)
        return [chains[i * n:(i + 1) * n] for i in range(len(prompts))]

    def _force(self, cache, mask, next_pos, rows, pending, chains) -> None:
        """Append the verdict marker to every unfinished sample and read the two letters' logits."""
        keep = torch.tensor(pending)
        cache.batch_select_indices(keep)
        mask, next_pos = mask[keep], next_pos[keep]
        suffix = torch.tensor(self.force_ids).unsqueeze(0).repeat(len(pending), 1)
        mask = torch.cat([mask, torch.ones_like(suffix)], dim=1)
        positions = next_pos.unsqueeze(1) + torch.arange(suffix.shape[1]).unsqueeze(0)
        out = self.model(input_ids=suffix, attention_mask=mask, position_ids=positions, past_key_values=cache,
                         use_cache=True, logits_to_keep=1)
        logprobs = torch.log_softmax(out.logits[:, -1].float(), dim=-1)[:, self.choice_ids]
        for i, r in enumerate(pending):
            chain = chains[rows[r]]
            la, lb = float(logprobs[i, 0]), float(logprobs[i, 1])
            chain.tokens += self.force_ids + [self.choice_ids[0] if la >= lb else self.choice_ids[1]]
            chain.verdict, chain.logprobs, chain.forced = (0 if la >= lb else 1), (la, lb), True
