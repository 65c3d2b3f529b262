"""Where the time of a cot judge batch goes: the torch profiler's self CPU time per op. The profiler slows
the run several-fold; read the table for the split between ops, not for the clock.

    .venv/bin/python benchmarks/profile_cot.py --pairs 2 --samples 8
"""

import argparse
import time
from pathlib import Path

from judge_speed import labelled_pairs
from torch.profiler import ProfilerActivity, profile

from labeler.judge.backends import make_backend
from labeler.judge.judge import Judge, JudgeConfig

PREFS = Path(__file__).resolve().parents[2] / "shared" / "data" / "prefs"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=PREFS / "hh_helpful.jsonl")
    p.add_argument("--pairs", type=int, default=2)
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--rows", type=int, default=15, help="Ops shown.")
    args = p.parse_args()
    pairs, _ = labelled_pairs(args.data, args.pairs)
    backend = make_backend("transformers")
    backend.load()
    judge = Judge(backend, JudgeConfig(mode="cot", samples=args.samples, max_new_tokens=args.max_new_tokens))
    backend.model  # loads the weights outside the profile
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        _, samples = judge.judge(pairs, "profile")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    print(f"{len(pairs)} pairs, {len(samples)} samples, {sum(s.forced for s in samples)} forced, "
          f"{time.perf_counter() - start:.1f} s under the profiler")


if __name__ == "__main__":
    main()
