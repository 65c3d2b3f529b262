"""What ranking N responses per prompt costs, per judge: judge calls and wall time per prompt for the reward judge
(the starter: one read per response), the pairwise judge (the base model, direct) with the sparse design, and the
same pairwise judge on the full round robin; and how often the sparse design's best is the round robin's best.

Responses are synthetic, from the dev pairs' texts (prefs/hh_helpful.jsonl): each prompt keeps its own two
responses and gets N - 2 responses of other prompts (on-topic answers among off-topic ones, as a weak policy's
samples would be). Texts are cut to --max-chars so a CPU run stays short. Every judgment is stored as labeler rank
stores it; each pair judgment is two forward passes (both orders).

    nice -n 19 .venv/bin/python benchmarks/rank_cost.py --prompts 8 --prompts-16 3
    .venv/bin/python benchmarks/rank_cost.py --simulate 300     # seconds: the design alone, on simulated judges

`--simulate K` measures the design alone on K prompts per row against simulated judges of known quality: each
response has a quality q ~ N(0, 1) and the judge prefers i over j in each order with P = sigmoid(beta (q_i - q_j));
the round robin's best is the Bradley-Terry best over all pairs, on the same votes.
"""

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))
PAIRS = ROOT.parent / "shared" / "data" / "prefs" / "hh_helpful.jsonl"


def synthetic(path: Path, source: Path, n: int, prompts: int, max_chars: int, seed: int = 0) -> Path:
    rows = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines()]
    rows = [r for r in rows if "\n\nAssistant:" not in r["prompt"]]  # single-turn prompts
    rng = random.Random(seed)
    pool = [r[k][:max_chars] for r in rows for k in ("response_a", "response_b")]
    out = []
    for row in rng.sample(rows, prompts):
        own = [row["response_a"][:max_chars], row["response_b"][:max_chars]]
        others = [t for t in rng.sample(pool, n + 4) if t not in own][: n - 2]
        responses = own + others
        rng.shuffle(responses)
        out.append({"prompt": row["prompt"][:max_chars], "responses": responses})
    path.write_text("".join(json.dumps(r) + "\n" for r in out), encoding="utf-8")
    return path


def measure(db: Path, data: Path, judge: str, budget: int | None = None) -> tuple[dict, dict[str, int]]:
    from labeler import api
    from labeler.store import Store

    result = api.rank(db, [data], judge=judge, mode="direct", budget=budget, batch_size=8)
    with Store(db) as store:
        best = {g: max(scores, key=lambda s: (s.score, -s.idx)).idx for g, scores in store.rank_scores().items()}
    groups = len(result.ranked)
    return {"calls": result.judge_calls / groups, "seconds": result.seconds / groups}, best


def simulate(prompts: int) -> None:
    import math

    from labeler.judge import design
    from labeler.judge.bradley_terry import fit

    print("| N | judge beta | pairs / prompt (sparse) | pairs / prompt (round robin) | share | top-1 agreement |")
    print("|---|---|---|---|---|---|")
    rng = random.Random(0)
    for n in (4, 8, 16):
        for beta in (1.0, 2.0, 4.0):
            agree = cost = 0
            for t in range(prompts):
                q = [rng.gauss(0, 1) for _ in range(n)]
                votes = {}
                for i in range(n):
                    for j in range(i + 1, n):
                        wins = sum(rng.random() < 1 / (1 + math.exp(-beta * (q[i] - q[j]))) for _ in range(2))
                        votes[(i, j)] = (float(wins), 2.0 - wins)
                progress = design.replay(n, f"sim{t}", lambda pair: votes[pair])
                agree += fit(n, progress.results).order()[0] == fit(n, votes).order()[0]
                cost += len(progress.results)
            print(f"| {n} | {beta:g} | {cost / prompts:.1f} | {design.full_cost(n)} | "
                  f"{cost / prompts / design.full_cost(n):.0%} | {agree / prompts:.1%} |", flush=True)


def main(args) -> None:
    from labeler.judge.design import full_cost

    if args.simulate:
        return simulate(args.simulate)

    print("| N | prompts | reward: reads / prompt | reward: s / prompt | sparse: pairs / prompt | sparse: s / prompt "
          "| round robin: pairs / prompt | round robin: s / prompt | sparse / round robin calls | top-1 agreement |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in (4, 8, 16):
            prompts = args.prompts_16 if n == 16 else args.prompts
            data = synthetic(Path(tmp) / f"n{n}.jsonl", args.pairs, n, prompts, args.max_chars)
            reward, _ = measure(Path(tmp) / f"reward{n}.duckdb", data, "starter")
            sparse, sparse_best = measure(Path(tmp) / f"sparse{n}.duckdb", data, "base")
            full, full_best = measure(Path(tmp) / f"full{n}.duckdb", data, "base", budget=full_cost(n))
            agree = sum(sparse_best[g] == full_best[g] for g in full_best)
            print(f"| {n} | {prompts} | {reward['calls']:.0f} | {reward['seconds']:.2f} | {sparse['calls']:.1f} | "
                  f"{sparse['seconds']:.2f} | {full['calls']:.0f} | {full['seconds']:.2f} | "
                  f"{sparse['calls'] / full['calls']:.0%} | {agree}/{len(full_best)} |", flush=True)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=8, help="Prompts for N = 4 and N = 8.")
    parser.add_argument("--prompts-16", type=int, default=3, help="Prompts for N = 16.")
    parser.add_argument("--max-chars", type=int, default=300, help="Cut prompts and responses to this length.")
    parser.add_argument("--pairs", type=Path, default=PAIRS, help="Dev pairs whose texts make the responses.")
    parser.add_argument("--simulate", type=int, default=0, help="Prompts per row of the simulated-judge table.")
    return parser


if __name__ == "__main__":
    main(make_parser().parse_args())
