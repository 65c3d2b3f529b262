"""The starter judge's labelling speed against the untrained base model's, side by side on the same pairs.

    .venv/bin/python benchmarks/starter_speed.py --pairs 50 --rounds 2

Both judge the first `--pairs` labelled pairs of `--data` in direct mode, as `labeler annotate` does (batches of
`--batch-size` pairs, both orders): `--judge base` (the GenRM prompt through the transformers backend, float32) and
`--judge starter` (the shipped judge through its own backend). The two alternate `--rounds` times after a warm-up
batch each; prints pairs/s of each round, the ratio starter / base, and each judge's agreement on those pairs.

    .venv/bin/python benchmarks/starter_speed.py --dtype-match 300

The starter reads its features in bf16 autocast (as it was trained; `bf16` in its probe_config.json). This judges
the first 300 / 6 pairs of each dev file with the starter as shipped and with its features read in float32 (the
same head), alternating, and prints the share of identical labels, each one's agreement and pairs/s, and the ratio.

    .venv/bin/python benchmarks/starter_speed.py --against DIR --pairs-dev 300

The shipped starter against another probe judge dir (e.g. the previous starter, laid out as a judge dir) on the
first 300 / 6 pairs of each dev file, alternating `--rounds` times: pairs/s of each, the ratio and each one's
agreement. Each reads its features as its probe_config.json says (bf16 or float32).

    .venv/bin/python benchmarks/starter_speed.py --batching 300

The starter on the same dev pairs in fixed feature batches of `--batch-size` texts (as it runs) and with its batches
closed at `CPU_ROWS` tokens (as the generative judge's direct reads are), alternating: pairs/s, the ratio and the
share of identical labels.
"""

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from judge_speed import agreement, dev_pairs, judge_all, labelled_pairs  # noqa: E402


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "prefs" / "hh_helpful.jsonl")
    p.add_argument("--pairs", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--dtype-match", type=int, default=None, metavar="N",
                   help="Instead: the starter's labels with bf16 against float32 features on N dev pairs.")
    p.add_argument("--batching", type=int, default=None, metavar="N",
                   help="Instead: the starter in token-budget against fixed feature batches on N dev pairs.")
    p.add_argument("--against", type=Path, default=None, help="Instead: the starter against this probe judge dir.")
    p.add_argument("--pairs-dev", type=int, default=300, help="--against: dev pairs (first N/6 of each file).")
    args = p.parse_args(argv)
    if args.against:
        return against(args.against, args.pairs_dev, args.batch_size, args.rounds)
    if args.dtype_match:
        return dtype_match(args.dtype_match, args.batch_size, args.rounds)
    if args.batching:
        return batching(args.batching, args.batch_size, args.rounds)

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


def dtype_match(n: int, batch_size: int, rounds: int) -> dict:
    from labeler.judge.judge import JudgeConfig
    from labeler.pipeline import build_judge
    from trainer.versions import builtin

    pairs, gold = dev_pairs(n)
    spec = builtin("starter")
    judges = {dtype: build_judge(spec.backend, spec.model, JudgeConfig(mode="direct"), batch_size)
              for dtype in ("bfloat16", "float32")}
    backend = judges["float32"].backend
    _ = backend.model  # loads the probe (lazily) and its config
    backend._probe_config = {**backend._probe_config, "bf16": False}  # benchmark-local: the same head, fp32 features
    for judge in judges.values():
        judge.judge(pairs[:batch_size], "warm-up")
    seconds = {dtype: 0.0 for dtype in judges}
    labels = {}
    for _ in range(rounds):
        for dtype, judge in judges.items():
            judgments, _, s = judge_all(judge, pairs, batch_size)
            seconds[dtype] += s
            labels[dtype] = [j.label for j in judgments]
    same = sum(a == b for a, b in zip(labels["bfloat16"], labels["float32"])) / len(pairs)
    result = {"pairs": len(pairs), "rounds": rounds, "label_match": same,
              **{f"{d}_pairs_per_s": rounds * len(pairs) / s for d, s in seconds.items()},
              **{f"{d}_agreement": agreement(labels[d], gold) for d in labels},
              "bf16_speedup": seconds["float32"] / seconds["bfloat16"]}
    print(json.dumps(result))
    return result


def against(other: Path, n: int, batch_size: int, rounds: int) -> dict:
    from labeler.judge.judge import JudgeConfig
    from labeler.pipeline import build_judge
    from trainer.versions import builtin

    pairs, gold = dev_pairs(n)
    spec = builtin("starter")
    judges = {"starter": build_judge(spec.backend, spec.model, JudgeConfig(mode="direct"), batch_size),
              "other": build_judge("reward", str(other), JudgeConfig(mode="direct"), batch_size)}
    for judge in judges.values():
        judge.judge(pairs[:batch_size], "warm-up")
    seconds, labels = {name: 0.0 for name in judges}, {}
    for _ in range(rounds):
        for name, judge in judges.items():
            judgments, _, s = judge_all(judge, pairs, batch_size)
            seconds[name] += s
            labels[name] = [j.label for j in judgments]
            print(f"{name}: {len(pairs) / s:.2f} pairs/s", flush=True)
    result = {"pairs": len(pairs), "rounds": rounds, "other": str(other),
              **{f"{name}_pairs_per_s": rounds * len(pairs) / s for name, s in seconds.items()},
              **{f"{name}_agreement": agreement(labels[name], gold) for name in labels},
              "starter_over_other": seconds["other"] / seconds["starter"]}
    print(json.dumps(result))
    return result


def batching(n: int, batch_size: int, rounds: int) -> dict:
    from labeler.judge.backends.batching import CPU_ROWS
    from labeler.judge.judge import JudgeConfig
    from labeler.pipeline import build_judge
    from trainer.versions import builtin

    pairs, gold = dev_pairs(n)
    spec = builtin("starter")
    judge = build_judge(spec.backend, spec.model, JudgeConfig(mode="direct"), batch_size)
    judge.judge(pairs[:batch_size], "warm-up")
    seconds, labels = {"budget": 0.0, "fixed": 0.0}, {}
    for _ in range(rounds):
        for name in seconds:
            judge.backend.cpu_rows = CPU_ROWS if name == "budget" else None
            judgments, _, s = judge_all(judge, pairs, batch_size)
            seconds[name] += s
            labels[name] = [j.label for j in judgments]
            print(f"{name}: {len(pairs) / s:.2f} pairs/s", flush=True)
    result = {"pairs": len(pairs), "rounds": rounds, "batch_size": batch_size,
              "label_match": sum(a == b for a, b in zip(labels["budget"], labels["fixed"])) / len(pairs),
              **{f"{name}_pairs_per_s": rounds * len(pairs) / s for name, s in seconds.items()},
              **{f"{name}_agreement": agreement(labels[name], gold) for name in labels},
              "budget_speedup": seconds["fixed"] / seconds["budget"]}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
