"""Does adaptive voting's pairs/s follow its sample ratio? Fixed K against adaptive, before and after, side by side.

    .venv/bin/python benchmarks/adaptive_speed.py --pairs 32 --k 8 --batch-size 2 --max-new-tokens 128 --threads 2

On the same human-labelled pairs (the first `--pairs` of `--data`), cot with K samples per order, in one process:
- `fixed`: K samples per order at once, `--batch-size` pairs per judge call (annotate's batching);
- `adaptive_before` (with `--runs`): as adaptive voting ran before prefills were kept: `--batch-size` pairs per
  call and every round prefilling its prompts again;
- `adaptive_batches`: prefills kept across rounds (`LABELER_PREFILL_CACHE_MB`) and K / adaptive_round times the
  pairs per judge call (`JudgeConfig.batch_pairs`), each call's later rounds decoding only its undecided pairs;
- `adaptive`: as `labeler annotate --adaptive` runs now: `Judge.stream` keeps that many pairs in flight, a pair
  that stops early giving its place to the next pair (continuous batching), prefills kept.
Prints samples drawn, pairs/s, the sample ratio (fixed samples / adaptive samples) and the pairs/s ratio over
fixed K, and the target's quotient pairs ratio / sample ratio (issue: >= 0.8). The adaptive runs draw the same
samples (seeded per sample), so their labels must match. JSON goes to benchmarks/results/adaptive-<time>.json.
"""

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from judge_speed import agreement, judge_all, labelled_pairs, stream_all  # noqa: E402


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "prefs" / "hh_helpful.jsonl")
    p.add_argument("--pairs", type=int, default=16)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=4, help="Pairs per judge call for fixed K (annotate's --batch-size).")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--dtype", default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", default="fixed,adaptive_batches,adaptive",
                   help="Comma-separated, of fixed, adaptive_before, adaptive_batches, adaptive.")
    args = p.parse_args(argv)

    import torch

    from labeler.judge.backends import make_backend
    from labeler.judge.backends.transformers.chains import ChainSampler
    from labeler.judge.judge import Judge, JudgeConfig

    torch.set_num_threads(args.threads)
    pairs, gold = labelled_pairs(args.data, args.pairs)
    backend = make_backend("transformers", batch_size=8, dtype=args.dtype)
    backend.load()
    fixed_cfg = JudgeConfig(mode="cot", samples=args.k, max_new_tokens=args.max_new_tokens)
    adaptive_cfg = JudgeConfig(mode="cot", samples=args.k, max_new_tokens=args.max_new_tokens, adaptive=True)
    keeping = ChainSampler._prefill

    def not_keeping(self, prompts, ids, mask, keep):
        return keeping(self, prompts, ids, mask, [False] * len(prompts))

    result = {"command": " ".join(sys.argv), "pairs": len(pairs), "k": args.k, "batch_size": args.batch_size,
              "threads": args.threads, "max_new_tokens": args.max_new_tokens, "dtype": backend.dtype, "runs": {}}
    judge_all(Judge(backend, JudgeConfig(mode="cot", samples=2, max_new_tokens=8)), pairs[:2], 2)  # warm-up
    labels = {}
    wanted = args.runs.split(",")
    runs = [name for name in ("adaptive_before", "fixed", "adaptive_batches", "adaptive") if name in wanted]
    for name in runs:
        ChainSampler._prefill = not_keeping if name == "adaptive_before" else keeping
        cfg = fixed_cfg if name == "fixed" else adaptive_cfg
        widened = name in ("adaptive_batches", "adaptive")
        per_call = adaptive_cfg.batch_pairs(args.batch_size) if widened else args.batch_size
        judge = Judge(backend, cfg)
        if name == "adaptive":
            judgments, samples, seconds = stream_all(judge, pairs, per_call)
        else:
            judgments, samples, seconds = judge_all(judge, pairs, per_call)
        labels[name] = [j.label for j in judgments]
        result["runs"][name] = {"samples": len(samples), "seconds": seconds, "pairs_per_s": len(pairs) / seconds,
                                "pairs_per_call": per_call, "agreement": agreement(labels[name], gold),
                                "forced_share": sum(s.forced for s in samples) / len(samples)}
        print(f"{name}: {len(samples)} samples, {len(pairs) / seconds:.4f} pairs/s "
              f"({per_call} pairs {'in flight' if name == 'adaptive' else 'per call'})", flush=True)
    ChainSampler._prefill = keeping
    fixed = result["runs"].get("fixed")
    for name in runs:
        r = result["runs"][name]
        if name == "fixed" or fixed is None:
            continue
        r["sample_ratio"] = fixed["samples"] / r["samples"]
        r["pairs_ratio"] = fixed["seconds"] / r["seconds"]
        r["pairs_ratio_over_sample_ratio"] = r["pairs_ratio"] / r["sample_ratio"]
        print(f"{name}: sample ratio {r['sample_ratio']:.2f}, pairs/s ratio {r['pairs_ratio']:.2f}, "
              f"quotient {r['pairs_ratio_over_sample_ratio']:.2f}")
    adaptive_labels = [labels[name] for name in runs if name != "fixed"]
    result["same_adaptive_labels"] = all(x == adaptive_labels[0] for x in adaptive_labels)
    print(f"adaptive runs give the same labels: {result['same_adaptive_labels']}")
    out = ROOT / "benchmarks" / "results" / f"adaptive-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
