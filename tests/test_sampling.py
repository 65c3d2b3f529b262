"""The nucleus sampler and the cascade KV cache against the transformers pieces they replace."""

import pytest
import torch
from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

from labeler.judge.backends.transformers.sampling import nucleus, nucleus_sample


def _dense(ids: torch.Tensor, weights: torch.Tensor, vocab: int) -> torch.Tensor:
    out = torch.zeros(ids.shape[0], vocab, dtype=torch.float64)
    out.scatter_(1, ids, weights.double())
    return out / out.sum(-1, keepdim=True)


@pytest.mark.parametrize("sharpness", [0.1, 1.0, 4.0, 12.0])  # 0.1: nearly flat, the top-k must grow to the vocab
@pytest.mark.parametrize("top_p", [0.5, 0.9, 0.95])
def test_nucleus_keeps_the_same_tokens_and_probabilities_as_transformers(sharpness, top_p):
    torch.manual_seed(0)
    logprobs = torch.log_softmax(torch.randn(6, 5000, dtype=torch.float64) * sharpness, dim=-1)
    ids, weights = nucleus(logprobs.exp(), top_p)
    expected = torch.softmax(TopPLogitsWarper(top_p)(None, logprobs.clone()), dim=-1)
    assert torch.allclose(_dense(ids, weights, 5000), expected, atol=1e-9)


def test_nucleus_sample_draws_the_warped_distribution_by_inverse_cdf():
    """Evenly spaced uniforms must reproduce transformers' temperature + top-p distribution to within 1/M."""
    torch.manual_seed(1)
    logprobs = torch.log_softmax(torch.randn(3, 300) * 3, dim=-1)
    expected = torch.softmax(TopPLogitsWarper(0.9)(None, TemperatureLogitsWarper(0.7)(None, logprobs.clone())), -1)
    m = 4000
    counts = torch.zeros(3, 300)
    for i in range(m):
        picked = nucleus_sample(logprobs, 0.7, 0.9, torch.full((3,), (i + 0.5) / m))
        counts[torch.arange(3), picked] += 1
    assert (counts / m - expected).abs().max() <= 1.0 / m + 1e-6


def test_nucleus_sample_at_a_vanishing_temperature_is_greedy():
    logprobs = torch.log_softmax(torch.randn(5, 100), dim=-1)
    for u in (0.0, 0.5, 0.999):
        assert torch.equal(nucleus_sample(logprobs, 1e-9, 1.0, torch.full((5,), u)), logprobs.argmax(-1))
        assert torch.equal(nucleus_sample(logprobs, 1.0, 1e-6, torch.full((5,), u)), logprobs.argmax(-1))


def test_cascade_attention_decodes_like_sdpa_over_a_repeated_cache(tiny_llama):
    """Shared prefixes (left-padded prompts of different lengths), uneven samples per prompt after rows leave,
    a several-token step (the forcing suffix) and a copied subset of rows: all as plain SDPA over a cache
    holding every prompt once per sample."""
    from transformers import AutoModelForCausalLM

    from labeler.judge.backends.transformers import cascade
    from labeler.judge.backends.transformers.chains import left_pad, positions_from_mask

    model = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    assert model.config.num_attention_heads > model.config.num_key_value_heads  # grouped-query heads covered
    ids, mask = left_pad([[5, 6, 7, 8, 9, 10, 11], [12, 13, 14], [15, 16, 17, 18, 19]], 0)
    n = 3
    with torch.no_grad():
        prefill = model(input_ids=ids, attention_mask=mask, position_ids=positions_from_mask(mask), use_cache=True)
        plain = model(input_ids=ids, attention_mask=mask, position_ids=positions_from_mask(mask),
                      use_cache=True).past_key_values
        plain.batch_repeat_interleave(n)
        shared = cascade.CascadeCache.from_prefill(prefill.past_key_values, n, capacity=10)
        mask = mask.repeat_interleave(n, 0)
        pos = positions_from_mask(mask)[:, -1] + 1

        def step(tokens, feed):
            nonlocal mask, pos, plain, shared
            mask = torch.cat([mask, feed.long().unsqueeze(1).expand(-1, tokens.shape[1])], dim=1)
            positions = pos.unsqueeze(1) + torch.arange(tokens.shape[1])
            a = model(input_ids=tokens, attention_mask=mask, position_ids=positions, past_key_values=plain,
                      use_cache=True).logits
            with cascade.cascade_attention_on(model):
                b = cascade.forward(model, shared, input_ids=tokens, attention_mask=mask, position_ids=positions).logits
            pos = pos + feed.long() * tokens.shape[1]
            assert torch.allclose(a, b, atol=1e-5)

        rows = torch.arange(9)
        step((20 + rows).unsqueeze(1), torch.ones(9, dtype=torch.bool))
        step((30 + rows).unsqueeze(1), rows % 4 != 0)  # some rows skip a step (masked column)
        keep = torch.tensor([0, 1, 2, 4, 8])  # prompt 1 keeps one sample, prompt 2 one; rows stay in order
        plain.batch_select_indices(keep)
        shared = cascade.select_rows(shared, keep)
        mask, pos = mask[keep], pos[keep]
        step(torch.tensor([[40, 41, 42]] * 5), torch.ones(5, dtype=torch.bool))  # several tokens: causal inside
        assert shared.get_seq_length() == ids.shape[1] + 5
        with pytest.raises(RuntimeError, match="capacity"):
            step(torch.tensor([[1] * 6] * 5), torch.ones(5, dtype=torch.bool))
