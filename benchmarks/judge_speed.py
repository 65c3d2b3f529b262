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
- dtypes: direct and cot in bfloat16 and int8 (`--dtype`) against float32 on the same pairs: pairs/s, each
  one's share of the matmul peak measured in its own dtype (int8: a dynamically quantized linear layer), the
  labels that match float32, and for cot the forced share and mean sample length (same token statistics).
- `dtype_label_match`: direct labels of bfloat16 / bf16 autocast / int8 against float32 on many dev pairs (300 by
  default).
- `direct_speeds` (`--direct-pairs N`): direct alone, in alternating rounds: float32 in the CPU's token-budget
  batches (`CPU_ROWS`) and in the fixed batches of batch_size // 2 pairs used before them, bfloat16 and int8 in
  the budget batches; pairs/s, share of each dtype's limit, labels as float32.
"""

import json
import math
import sys
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch

from labeler.judge.backends import make_backend
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


def dev_pairs(n: int) -> tuple[list[Pair], list[str]]:
    """The first n/6 labelled pairs of each ../shared/data/prefs file, n in all: (pairs, labels)."""
    files = sorted((Path(__file__).resolve().parents[2] / "shared" / "data" / "prefs").glob("*.jsonl"))
    dev = [labelled_pairs(f, -(-n // len(files))) for f in files]
    return [p for ps, _ in dev for p in ps][:n], [g for _, gs in dev for g in gs][:n]


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


def stream_all(judge: Judge, pairs, width: int) -> tuple[list, list, float]:
    """As annotate feeds a judge (`Judge.stream`: adaptive voting keeps `width` pairs in flight); the judgments
    in the order of `pairs`."""
    queue, order = list(pairs), {pair.pair_id: i for i, pair in enumerate(pairs)}

    def take(n):
        got, queue[:] = queue[:n], queue[n:]
        return got

    start, judgments, samples = time.perf_counter(), [], []
    for j, s in judge.stream(take, width, "bench"):
        judgments += j
        samples += s
    return sorted(judgments, key=lambda j: order[j.pair_id]), samples, time.perf_counter() - start


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


def matmul_peak_flops(n: int = 2048, reps: int = 8, dtype: str = "float32") -> float:
    """FLOP/s of an n x n x n product in `dtype` (int8: dynamically quantized `nn.Linear`, as `--dtype int8`)."""
    a = torch.randn(n, n)
    if dtype == "int8":
        import warnings

        from torch.ao.quantization import quantize_dynamic

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            layer = quantize_dynamic(torch.nn.Sequential(torch.nn.Linear(n, n, bias=False)), {torch.nn.Linear},
                                     dtype=torch.qint8)
        op = lambda: layer(a)  # noqa: E731
    else:
        a = a.to(getattr(torch, dtype))
        b = torch.randn(n, n, dtype=a.dtype)
        op = lambda: a @ b  # noqa: E731
    with torch.inference_mode():
        op()
        start = time.perf_counter()
        for _ in range(reps):
            op()
    return 2 * n**3 * reps / (time.perf_counter() - start)


def direct_limit(backend, pairs, peak: float) -> float:
    """Pairs/s if every token's matmuls ran at the measured peak."""
    model = backend.model
    body = sum(m.weight().numel() if callable(m.weight) else m.weight.numel()  # a quantized layer's is a method
               for m in model.model.layers.modules() if hasattr(m, "weight") and "Linear" in type(m).__name__)
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
    adapt, adapt_samples, adapt_s = stream_all(Judge(backend, adaptive), pairs, adaptive.batch_pairs(batch_size))
    log(f"cot K={k} adaptive: {len(adapt_samples)} samples vs {len(samples)} fixed, {len(pairs) / adapt_s:.3f} pairs/s")
    direct, _, direct_s = judge_all(Judge(backend, JudgeConfig(mode="direct")), pairs, batch_size)
    with fixed_batches(backend):
        _, _, fixed_s = judge_all(Judge(backend, JudgeConfig(mode="direct")), pairs, batch_size)
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
        direct_fixed_batches_pairs_per_s=len(pairs) / fixed_s,
        direct_limit_share=(len(pairs) / direct_s) / limit, matmul_peak_gflops=peak / 1e9,
        direct_agreement=agreement([j.label for j in direct], gold),
        fixed_pairs_per_s=len(pairs) / ours_s, adaptive_pairs_per_s=len(pairs) / adapt_s,
        adaptive_pairs_ratio=ours_s / adapt_s,
        cot_mean_chars=sum(len(x.text) for x in samples) / len(samples),
    )
    peaks = {"float32": peak}
    for dtype in ("bfloat16", "int8"):
        other = dtype_backend(backend, dtype)
        peaks[dtype] = matmul_peak_flops(dtype=dtype)
        fast, _, fast_s = judge_all(Judge(other, JudgeConfig(mode="direct")), pairs, batch_size)
        tag = {"bfloat16": "bf16", "int8": "int8"}[dtype]
        out[f"direct_{tag}_pairs_per_s"] = len(pairs) / fast_s
        out[f"direct_{tag}_speedup"] = direct_s / fast_s
        out[f"direct_{tag}_speedup_over_fixed_batches"] = fixed_s / fast_s
        out[f"direct_{tag}_limit_share"] = (len(pairs) / fast_s) / direct_limit(other, pairs, peaks[dtype])
        out[f"direct_{tag}_label_match"] = _match(direct, fast)
        fast_cot, fast_samples, fast_cot_s = judge_all(Judge(other, cot), pairs, batch_size)
        out[f"cot_{tag}_pairs_per_s"] = len(pairs) / fast_cot_s
        out[f"cot_{tag}_speedup"] = ours_s / fast_cot_s
        out[f"cot_{tag}_label_match"] = _match(ours, fast_cot)
        out[f"cot_{tag}_forced_share"] = sum(x.forced for x in fast_samples) / len(fast_samples)
        out[f"cot_{tag}_mean_chars"] = sum(len(x.text) for x in fast_samples) / len(fast_samples)
        log(f"{dtype}: direct {out[f'direct_{tag}_speedup']:.2f}x float32 ({out[f'direct_{tag}_limit_share']:.0%} of "
            f"its {peaks[dtype] / 1e9:.0f} GFLOP/s peak), labels {out[f'direct_{tag}_label_match']:.0%} as float32; "
            f"cot {out[f'cot_{tag}_speedup']:.2f}x")
        del other
    out["matmul_peak_gflops_by_dtype"] = {k: v / 1e9 for k, v in peaks.items()}
    out["direct_label_match"] = out["direct_bf16_label_match"]
    return out


@contextmanager
def fixed_batches(backend):
    """Within it, `backend`'s direct reads batch batch_size // 2 pairs per forward on the CPU too (as before
    `CPU_ROWS`)."""
    backend.cpu_rows = math.inf
    try:
        yield
    finally:
        del backend.cpu_rows  # back to the class's budget


def direct_speeds(backend, pairs, gold: list[str], batch_size: int, rounds: int) -> dict:
    """Direct mode side by side, the runs alternating `rounds` times: float32 in the CPU's token-budget batches and
    in fixed batches, bfloat16 and int8 in budget batches. Pairs/s (mean of rounds), share of the limit in the
    run's dtype, labels as float32, agreement."""
    runs = {"float32": backend, "float32_fixed_batches": backend,
            "bfloat16": dtype_backend(backend, "bfloat16"), "int8": dtype_backend(backend, "int8")}
    peaks = {dtype: matmul_peak_flops(dtype=dtype) for dtype in ("float32", "bfloat16", "int8")}
    times, labels = {name: [] for name in runs}, {}
    for name, other in runs.items():  # warm-up: weights loaded, kernels chosen
        judge_all(Judge(other, JudgeConfig(mode="direct")), pairs[:1], batch_size)
    for r in range(rounds):
        for name, other in runs.items():
            with fixed_batches(other) if name.endswith("fixed_batches") else nullcontext():
                got, _, seconds = judge_all(Judge(other, JudgeConfig(mode="direct")), pairs, batch_size)
            times[name].append(seconds)
            labels[name] = got
            print(f"round {r + 1} {name}: {len(pairs) / seconds:.3f} pairs/s", flush=True)
    out = {"pairs": len(pairs), "rounds": rounds, "matmul_peak_gflops": {k: v / 1e9 for k, v in peaks.items()}}
    for name, other in runs.items():
        rate = len(pairs) * rounds / sum(times[name])
        dtype = name.removesuffix("_fixed_batches")
        out[name] = {"pairs_per_s": rate, "limit_share": rate / direct_limit(other, pairs, peaks[dtype]),
                     "label_match": _match(labels["float32"], labels[name]),
                     "agreement": agreement([j.label for j in labels[name]], gold),
                     "seconds": times[name]}
    base, fixed = out["float32"]["pairs_per_s"], out["float32_fixed_batches"]["pairs_per_s"]
    for name in runs:
        out[name]["speedup"] = out[name]["pairs_per_s"] / base
        out[name]["speedup_over_fixed_batches"] = out[name]["pairs_per_s"] / fixed
        print(f"{name}: {out[name]['pairs_per_s']:.3f} pairs/s, {out[name]['speedup']:.2f}x float32, "
              f"{out[name]['speedup_over_fixed_batches']:.2f}x float32 in fixed batches, "
              f"{out[name]['limit_share']:.0%} of its limit, labels {out[name]['label_match']:.0%} as float32",
              flush=True)
    return out


def _match(ours: list, theirs: list) -> float:
    """Share of pairs whose pooled label is the same."""
    return sum(a.label == b.label for a, b in zip(ours, theirs)) / len(ours)


def dtype_backend(backend, dtype: str):
    """A second backend on the same weights in `dtype`. int8 is not a `--dtype` (it changed too many labels, README):
    here it is the float32 backend with the decoder blocks' linear layers dynamically quantized (torch's
    `quantize_dynamic`, VNNI kernels), the embedding and the verdict head kept float32. `bf16_autocast` (not a
    `--dtype` either) is the float32 backend whose decoder runs under bfloat16 autocast: bf16 matmuls, the residual
    stream and norms in float32."""
    other = make_backend("transformers", model=str(backend._resolved), batch_size=backend.batch_size,
                         dtype="bfloat16" if dtype == "bfloat16" else "float32")
    other.load()
    if dtype == "bf16_autocast":
        decoder = other.model.get_decoder()
        forward = decoder.forward

        def autocast_forward(*args, **kwargs):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return forward(*args, **kwargs)

        decoder.forward = autocast_forward
    if dtype == "int8":
        import warnings

        from torch.ao.quantization import quantize_dynamic

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao's eager quantization is deprecated in favour of torchao
            for layer in other.model.get_decoder().layers:
                quantize_dynamic(layer, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    return other


def dtype_label_match(backend, pairs, gold: list[str], batch_size: int) -> dict:
    """Direct labels in bfloat16, bf16 autocast and int8 against float32 on the same (many) pairs: per order and
    pooled, the mean |P(A) change|, and each dtype's agreement with the human labels."""
    reference, ref_samples, ref_s = judge_all(Judge(backend, JudgeConfig(mode="direct")), pairs, batch_size)
    out = {"pairs": len(pairs), "float32_agreement": agreement([j.label for j in reference], gold),
           "float32_pairs_per_s": len(pairs) / ref_s}
    for dtype in ("bfloat16", "bf16_autocast", "int8"):
        other = dtype_backend(backend, dtype)
        got, got_samples, got_s = judge_all(Judge(other, JudgeConfig(mode="direct")), pairs, batch_size)
        per_order = sum(a.verdict == b.verdict for a, b in zip(ref_samples, got_samples)) / len(ref_samples)
        out[dtype] = {"pooled_label_match": _match(reference, got), "per_order_verdict_match": per_order,
                      "mean_abs_p_a_change": sum(abs(a.p_a - b.p_a) for a, b in zip(reference, got)) / len(got),
                      "agreement": agreement([j.label for j in got], gold), "pairs_per_s": len(pairs) / got_s,
                      "speedup": ref_s / got_s}
        print(f"{dtype}: pooled labels {out[dtype]['pooled_label_match']:.1%} as float32, per order "
              f"{per_order:.1%}, agreement {out[dtype]['agreement']:.1f} vs {out['float32_agreement']:.1f}, "
              f"{out[dtype]['speedup']:.2f}x", flush=True)
        del other
    return out


def main(argv=None) -> dict:
    """`python benchmarks/judge_speed.py --match-pairs 300`: the dtype label match alone (the first N/6 labelled
    pairs of each ../shared/data/prefs file, direct mode, the default model unless --model). `--direct-pairs N`
    instead: `direct_speeds` on the first N labelled hh_helpful dev pairs, result JSON in benchmarks/results/."""
    import argparse

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--match-pairs", type=int, default=300)
    p.add_argument("--model", default=None)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's).")
    p.add_argument("--direct-pairs", type=int, default=0, help="Time direct mode by dtype and batching instead.")
    p.add_argument("--rounds", type=int, default=2, help="Alternating rounds for --direct-pairs.")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.direct_pairs:
        return direct_speed_main(args)
    pairs, gold = dev_pairs(args.match_pairs)
    backend = make_backend("transformers", model=args.model, batch_size=args.batch_size)
    backend.load()
    out = dtype_label_match(backend, pairs, gold, args.batch_size)
    print(json.dumps(out, indent=1))
    return out


def direct_speed_main(args) -> dict:
    data = Path(__file__).resolve().parents[2] / "shared" / "data" / "prefs" / "hh_helpful.jsonl"
    pairs, gold = labelled_pairs(data, args.direct_pairs)
    backend = make_backend("transformers", model=args.model, batch_size=args.batch_size)
    backend.load()
    out = {"command": " ".join(["judge_speed.py", *sys.argv[1:]]), "threads": torch.get_num_threads(),
           "batch_size": args.batch_size, **direct_speeds(backend, pairs, gold, args.batch_size, args.rounds)}
    results = Path(__file__).resolve().parent / "results"
    path = results / f"direct-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
