"""The starter judge's labelling speed against the untrained base model's, side by side on the same pairs.

    .venv/bin/python benchmarks/starter_speed.py --pairs 50 --rounds 2

Both judge the first `--pairs` labelled pairs of `--data` in direct mode, as `labeler annotate` does (batches of
`--batch-size` pairs, both orders): `--judge base` (the GenRM prompt through the transformers backend, float32) and
`--judge starter` (the shipped judge through its own backend). The two alternate `--rounds` times after a warm-up
batch each; prints pairs/s of each round, the ratio starter / base, and each judge's agreement on those pairs.
"""

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from judge_speed import agreement, labelled_pairs  # noqa: E402


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "prefs" / "hh_helpful.jsonl")
    p.add_argument("--pairs", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)

    from labeler.judge.judge import JudgeConfig
    from labeler.pipeline import build_judge
    from trainer.versions import builtin

    pairs, gold = labelled_pairs(args.data, args.pairs)
    judges = {}
    for name in ("base", "starter"):
        spec = builtin(name)
        judges[name] = build_judge(spec.backend, spec.model, JudgeConfig(mode="direct"), args.batch_size)
        judges[name].judge(pairs[: args.batch_size], "warm-up")
    result = {"pairs": len(pairs), "batch_size": args.batch_size, "rounds": [], "agreement": {}}
    for _ in range(args.rounds):
        speeds = {}
        for name, judge in judges.items():
            start, labels = time.perf_counter(), []
            for i in range(0, len(pairs), args.batch_size):
                labels += [j.label for j in judge.judge(pairs[i : i + args.batch_size], "bench")[0]]
            speeds[name] = len(pairs) / (time.perf_counter() - start)
            result["agreement"][name] = agreement(labels, gold)
        speeds["starter_over_base"] = speeds["starter"] / speeds["base"]
        result["rounds"].append(speeds)
        print(f"base {speeds['base']:.3f} pairs/s, starter {speeds['starter']:.3f} pairs/s, "
              f"ratio {speeds['starter_over_base']:.2f}", flush=True)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
