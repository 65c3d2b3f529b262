"""Prefill in length groups against one padded forward, side by side on the same judge prompts.

    .venv/bin/python benchmarks/prefill_speed.py --pairs 32 --sizes 16,4 --rounds 2 --threads 2

The cot judge prompts (both orders) of the first `--pairs` human-labelled pairs are prefilled `size` prompts per
call, as the sampler receives them: 16 is a streamed adaptive round's (8 pairs in flight), 4 fixed K's at
`--batch-size 2`. Each call is prefilled once as one forward over the prompts left-padded to the longest (how
the sampler prefilled a call before) and once through `PrefillStore.prefill` (groups of similar length, the way
it does now), alternating which goes first per round. Prints seconds and the ratio per size; JSON goes to
benchmarks/results/prefill-<time>.json.
"""

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from judge_speed import labelled_pairs  # noqa: E402


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "prefs" / "hh_helpful.jsonl")
    p.add_argument("--pairs", type=int, default=32)
    p.add_argument("--sizes", default="16,4", help="Prompts per call, comma-separated.")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--dtype", default=None)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)

    import torch

    from labeler.judge.backends import make_backend
    from labeler.judge.backends.padding import left_pad, positions_from_mask
    from labeler.judge.backends.transformers.prefills import PrefillStore
    from labeler.judge.judge import Judge, JudgeConfig

    torch.set_num_threads(args.threads)
    pairs, _ = labelled_pairs(args.data, args.pairs)
    backend = make_backend("transformers", dtype=args.dtype)
    backend.load()
    judge = Judge(backend, JudgeConfig(mode="cot", samples=8))
    prompts = [backend.tokenizer.encode(text, add_special_tokens=False)
               for pair in pairs for _, _, text in judge._prompts([pair])]
    model, pad = backend.model, backend.tokenizer.pad_token_id

    def padded(batch):
        ids, mask = left_pad(batch, pad, model.device)
        model(input_ids=ids, attention_mask=mask, position_ids=positions_from_mask(mask), use_cache=True,
              logits_to_keep=1)

    def grouped(batch):
        ids, mask = left_pad(batch, pad, model.device)
        PrefillStore().prefill(model, batch, ids, mask, positions_from_mask(mask), keep=False)

    result = {"command": " ".join(sys.argv), "pairs": len(pairs), "prompts": len(prompts), "dtype": backend.dtype,
              "threads": args.threads, "mean_tokens": sum(map(len, prompts)) / len(prompts), "sizes": {}}
    with torch.inference_mode():
        padded(prompts[:2]), grouped(prompts[:2])  # warm-up
        for size in [int(s) for s in args.sizes.split(",")]:
            calls = [prompts[i : i + size] for i in range(0, len(prompts), size)]
            waste = 1 - sum(map(len, prompts)) / sum(len(c) * max(map(len, c)) for c in calls)
            seconds = {"padded": 0.0, "grouped": 0.0}
            for r in range(args.rounds):
                for name in (("padded", "grouped") if r % 2 == 0 else ("grouped", "padded")):
                    run = padded if name == "padded" else grouped
                    start = time.perf_counter()
                    for call in calls:
                        run(call)
                    seconds[name] += time.perf_counter() - start
            result["sizes"][size] = {"padding_share": waste, **seconds, "ratio": seconds["padded"] / seconds["grouped"]}
            print(f"{size} prompts per call ({waste:.0%} padding): one padded forward {seconds['padded']:.1f} s, "
                  f"grouped {seconds['grouped']:.1f} s, {seconds['padded'] / seconds['grouped']:.2f}x", flush=True)
    out = ROOT / "benchmarks" / "results" / f"prefill-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
