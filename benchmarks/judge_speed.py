"""Side-by-side judge speed on the same labelled pairs (imported by throughput.py; `--speedups` there).

- cot, K samples per order, both orders: our shared-prefix sampler (`labeler annotate --mode cot`) against a
  naive loop that calls `model.generate` once per sample, as transformers-based judges elsewhere do; the
  naive loop parses the last [[A]]/[[B]] and abstains without one (an undecided pair scores 1/2).
- adaptive voting against fixed K: samples drawn and agreement. Every sample is seeded by (seed, pair, order,
  index) alone, so the adaptive run draws exactly the first samples of the fixed run: the agreement delta is
  the stopping rule's effect, with no sampling noise between the two.
- direct: ours (length-sorted batches, last-position logits, both orders sharing their prefix) against the
  reference approach (one prompt at a time, full logits), and against the machine's compute limit: a float32
  matmul peak measured here divided by 2 x the parameters each token passes through (the output layer
  counted once per prompt, where the verdict logits are read).
"""

import json
import time
from pathlib import Path

import torch

from labeler.judge.judge import CHOICES, Judge, JudgeConfig
from labeler.judge.parse import parse_verdict
from labeler.judge.prompts import render, to_original
from schemas import Pair


def labelled_pairs(path: Path, n: int) -> tuple[list[Pair], list[str]]:
    """The first `n` rows of a JSONL file with a human label "A"/"B": (pairs, labels)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r.get("label") in ("A", "B")][:n]
    pairs = [Pair(pair_id=str(r["id"]), prompt=r["prompt"], response_a=r["response_a"], response_b=r["response_b"])
             for r in rows]
    return pairs, [r["label"] for r in rows]


def prompt_ids(backend, mode: str, pair: Pair, position: str) -> list[int]:
    """The judge prompt's token ids, as `Judge` renders it."""
    r = render(mode, pair, position)
    return backend.tokenizer.encode(backend.render_chat(r.system, r.user, r.assistant_prefix), add_special_tokens=False)


def agreement(labels: list[str | None], gold: list[str]) -> float:
    return 100.0 * sum(1.0 if l == g else 0.5 if l is None else 0.0 for l, g in zip(labels, gold)) / len(gold)


def judge_all(judge: Judge, pairs, batch_size: int) -> tuple[list, list, float]:
    start, judgments, samples = time.perf_counter(), [], []
    for i in range(0, len(pairs), batch_size):
        j, s = judge.judge(pairs[i : i + batch_size], "bench")
        judgments += j
        samples += s
    return judgments, samples, time.perf_counter() - start


@torch.inference_mode()
def naive_cot(backend, pairs, k: int, max_new_tokens: int, top_p: float, seed: int) -> tuple[list, float]:
    model, tok = backend.model, backend.tokenizer
    torch.manual_seed(seed)
    start, labels = time.perf_counter(), []
    for pair in pairs:
        votes = {"A": 0, "B": 0}
        for position in ("AB", "BA"):
            ids = torch.tensor([prompt_ids(backend, "cot", pair, position)])
            for _ in range(k):
                out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.0,
                                     top_p=top_p, top_k=0, max_new_tokens=max_new_tokens,
                                     pad_token_id=tok.pad_token_id)
                verdict = to_original(parse_verdict(tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)),
                                      position)
                if verdict:
                    votes[verdict] += 1
        labels.append(None if votes["A"] == votes["B"] else max(votes, key=votes.get))
    return labels, time.perf_counter() - start


@torch.inference_mode()
def direct_reference(backend, pairs) -> float:
    """One prompt at a time, full logits (the reference runs' way)."""
    model = backend.model
    ids_ab = backend.choice_ids(CHOICES)
    start = time.perf_counter()
    for pair in pairs:
        for position in ("AB", "BA"):
            ids = torch.tensor([prompt_ids(backend, "direct", pair, position)])
            torch.log_softmax(model(ids).logits[0, -1], dim=-1)[ids_ab]
    return time.perf_counter() - start


def matmul_peak_flops(n: int = 2048, reps: int = 8) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - start)


def direct_limit(backend, pairs, peak: float) -> float:
    """Pairs/s if every token's matmuls ran at the measured peak."""
    model = backend.model
    body = sum(m.weight.numel() for m in model.model.layers.modules() if isinstance(m, torch.nn.Linear))
    head = model.lm_head.weight.numel()
    tokens = sum(len(prompt_ids(backend, "direct", pair, position)) for pair in pairs for position in ("AB", "BA"))
    flops = 2 * body * tokens + 2 * head * 2 * len(pairs)
    return peak / (flops / len(pairs))


def speedups(backend, pairs, gold: list[str], k: int, max_new_tokens: int, batch_size: int, seed: int = 0) -> dict:
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    out = {"pairs": len(pairs), "k": k, "max_new_tokens": max_new_tokens}
    cot = JudgeConfig(mode="cot", samples=k, max_new_tokens=max_new_tokens, seed=seed)
    ours, samples, ours_s = judge_all(Judge(backend, cot), pairs, batch_size)
    log(f"cot K={k} ours: {len(pairs) / ours_s:.3f} pairs/s, agreement {agreement([j.label for j in ours], gold):.1f}")
    naive_labels, naive_s = naive_cot(backend, pairs, k, max_new_tokens, cot.top_p, seed)
    log(f"cot K={k} naive generate loop: {len(pairs) / naive_s:.3f} pairs/s, agreement {agreement(naive_labels, gold):.1f}")
    adaptive = JudgeConfig(mode="cot", samples=k, max_new_tokens=max_new_tokens, seed=seed, adaptive=True)
    adapt, adapt_samples, adapt_s = judge_all(Judge(backend, adaptive), pairs, batch_size)
    log(f"cot K={k} adaptive: {len(adapt_samples)} samples vs {len(samples)} fixed, {len(pairs) / adapt_s:.3f} pairs/s")
    direct, _, direct_s = judge_all(Judge(backend, JudgeConfig(mode="direct")), pairs, batch_size)
    reference_s = direct_reference(backend, pairs)
    peak = matmul_peak_flops()
    limit = direct_limit(backend, pairs, peak)
    log(f"direct: ours {len(pairs) / direct_s:.3f} pairs/s, reference {len(pairs) / reference_s:.3f} pairs/s, "
        f"limit {limit:.3f} pairs/s (matmul peak {peak / 1e9:.0f} GFLOP/s)")
    out.update(
        cot_pairs_per_s=len(pairs) / ours_s, naive_pairs_per_s=len(pairs) / naive_s,
        cot_speedup=naive_s / ours_s,
        cot_agreement=agreement([j.label for j in ours], gold), naive_agreement=agreement(naive_labels, gold),
        cot_agreement_delta=agreement([j.label for j in ours], gold) - agreement(naive_labels, gold),
        forced_share=sum(s.forced for s in samples) / len(samples),
        adaptive_samples=len(adapt_samples), fixed_samples=len(samples),
        adaptive_sample_ratio=len(samples) / len(adapt_samples),
        adaptive_agreement_delta=agreement([j.label for j in adapt], gold) - agreement([j.label for j in ours], gold),
        direct_pairs_per_s=len(pairs) / direct_s, direct_reference_pairs_per_s=len(pairs) / reference_s,
        direct_speedup=reference_s / direct_s, direct_limit_pairs_per_s=limit,
        direct_limit_share=(len(pairs) / direct_s) / limit, matmul_peak_gflops=peak / 1e9,
        direct_agreement=agreement([j.label for j in direct], gold),
    )
    return out
