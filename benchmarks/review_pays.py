"""Does review pay? Simulated reviewers on the dev sets, with the default `retrain` continuing the starter.

For each of the six dev sources in turn as "the user's domain": reveal the human labels of N pairs of that source,
chosen by the router (most doubtful first: the starter's calibrated confidence, lowest first, as `review push
--most-doubtful N` routes them) or at random, retrain as `labeler retrain` does by default after the starter
(`trainer.probe.train` with the starter as its prior: the same `fit_correction`, with the starter's shipped
reference pairs; 20 % of the revealed prompts held out for the promotion gate, the new judge kept only if it is
not worse there), and measure agreement on the source's pairs that were not revealed and on the other five.
Three seeds (the random order, the bootstrap and the held-out split); mean and spread over seeds.

The features are `probe_judge.py features --split prefs --no-bf16`'s, read once (the ones `retrain` would read),
so 144 retrains take minutes; `--check-api SOURCE N` runs one point as a user would (random review, seed 0): a
fresh store, the N pairs ingested as gold, `labeler.api.retrain` with no method (the starter continued, its own
held-out split), then `labeler.api.evaluate` of the new judge and of the starter on the source's other pairs.

    python benchmarks/review_pays.py --features F [--judge labeler/judge/starter dir] [--png-dir docs/images]
"""

import argparse
import hashlib
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
SIZES = (25, 50, 100, 200)
MIN_REST = 30  # a size that leaves fewer unrevealed pairs of the source is not measured


def agreement(head, better, worse) -> float:
    mean, _ = head.strength(better, worse)
    return float((mean > 0).float().mean())


def heldout_of(prompt: str, seed: int, fraction: float = 0.2) -> bool:
    return int(hashlib.sha256(f"{seed}\x1f{prompt}".encode()).hexdigest()[:8], 16) / 2**32 < fraction


def retrain(starter, better, worse, prompts, reference, seed: int):
    """What `labeler retrain` (no --method, starter active) does with these reviewed pairs: fit on 80 % of the
    prompts, keep the new judge only if it is not worse than the starter on the other 20 %."""
    import torch

    from trainer.config import ProbeTrainConfig
    from trainer.probe_adapt import fit_correction

    held = torch.tensor([heldout_of(p, seed) for p in prompts])
    if held.all() or not held.any():
        held = torch.zeros(len(prompts), dtype=torch.bool)
        held[-max(1, len(prompts) // 5):] = True
    train = ~held
    cfg = ProbeTrainConfig(seed=seed)
    head, info = fit_correction(starter, better[train], worse[train], [p for p, t in zip(prompts, train.tolist()) if t],
                                cfg, reference)
    new, old = agreement(head, better[held], worse[held]), agreement(starter, better[held], worse[held])
    return (head if new >= old else starter), new >= old, info


def main(argv=None) -> None:
    import torch

    from labeler.judge.backends.probe import ProbeHead
    from labeler.judge.backends.starter import starter_dir
    from probe_judge import load
    from trainer.probe import read_reference

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", type=Path, help="probe_judge.py features' dir (required unless --markdown).")
    parser.add_argument("--layer", type=int, default=8)
    parser.add_argument("--judge", type=Path, default=None, help="The probe judge to continue (default: the starter).")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sources", nargs="*", default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--png-dir", type=Path, default=None)
    parser.add_argument("--markdown", type=Path, default=None, help="Print the docs table of this result and exit.")
    parser.add_argument("--check-api", nargs=2, metavar=("SOURCE", "N"), default=None,
                        help="Instead: one point through labeler.api on a real store (see above).")
    parser.add_argument("--work", type=Path, default=Path("review-pays-check"), help="--check-api: work dir.")
    args = parser.parse_args(argv)
    if args.check_api:
        check_api(args.check_api[0], int(args.check_api[1]), args.work)
        return
    if args.markdown:
        results = json.loads(args.markdown.read_text())
        print(markdown(results))
        if args.png_dir:
            plot(results, args.png_dir)
        return
    if args.features is None:
        parser.error("--features is required")
    torch.set_num_threads(1)
    judge = args.judge or starter_dir()
    starter = ProbeHead.load(judge)
    ref = read_reference(judge)
    reference = None if ref is None else (ref["better"][~ref["heldout"]], ref["worse"][~ref["heldout"]])
    held_ref = None if ref is None else (ref["better"][ref["heldout"]], ref["worse"][ref["heldout"]])
    ref_before = agreement(starter, *held_ref) if held_ref else None
    dev = load(args.features, "prefs", args.layer)
    sources = args.sources or sorted(set(dev["source"]))
    by = {s: torch.tensor([i for i, x in enumerate(dev["source"]) if x == s]) for s in sorted(set(dev["source"]))}
    base = {s: agreement(starter, dev["better"][idx], dev["worse"][idx]) for s, idx in by.items()}
    mean, spread = starter.strength(dev["better"], dev["worse"])
    doubt = starter.evidence(mean, spread).abs()  # the routing order: a temperature does not change it
    results = {"judge": str(judge), "starter": base, "sizes": list(SIZES), "seeds": args.seeds, "points": []}
    for source in sources:
        idx = by[source]
        for seed in range(args.seeds):
            g = torch.Generator().manual_seed(seed)
            orders = {"random": idx[torch.randperm(len(idx), generator=g)],
                      "routed": idx[torch.argsort(doubt[idx] + 1e-6 * torch.rand(len(idx), generator=g))]}
            for strategy, order in orders.items():
                for n in SIZES:
                    if len(idx) - n < MIN_REST:
                        continue
                    shown, rest = order[:n], order[n:]
                    prompts = [dev["prompts"][i] for i in shown.tolist()]
                    head, promoted, info = retrain(starter, dev["better"][shown], dev["worse"][shown], prompts,
                                                   reference, seed)
                    # what `retrain` reports beside the promotion: agreement on the starter's held-out reference pairs
                    ref_change = agreement(head, *held_ref) - ref_before if held_ref else None
                    others = {s: agreement(head, dev["better"][j], dev["worse"][j]) for s, j in by.items() if s != source}
                    point = {"source": source, "seed": seed, "strategy": strategy, "n": n, "promoted": promoted,
                             "rest_n": len(rest), "rest": agreement(head, dev["better"][rest], dev["worse"][rest]),
                             "rest_starter": agreement(starter, dev["better"][rest], dev["worse"][rest]),
                             "others": others, "others_mean": sum(others.values()) / len(others),
                             "others_starter_mean": sum(base[s] for s in others) / len(others),
                             "reference_change": ref_change,
                             "reviewed_share": info["reviewed_share"], "gate_reviewed": info.get("gate_reviewed"),
                             "gate_reference": info.get("gate_reference")}
                    results["points"].append(point)
                    print(f"{source:14s} seed {seed} {strategy:6s} N={n:3d}: rest {point['rest']:.3f} (starter "
                          f"{point['rest_starter']:.3f}) others {point['others_mean']:.3f} (starter "
                          f"{point['others_starter_mean']:.3f}) promoted={promoted} share={info['reviewed_share']}",
                          flush=True)
    results["table"] = table(results)
    out = args.json or ROOT / "benchmarks" / "results" / f"review-pays-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print_table(results["table"])
    print(f"wrote {out}")
    if args.png_dir:
        plot(results, args.png_dir)


def check_api(source: str, n: int, work: Path) -> dict:
    """`n` random pairs of `source` reviewed (seed 0's order over its labelled rows), the default retrain, and both
    judges evaluated on the rest, through the public API."""
    import random
    import time

    from labeler import api

    rows = [json.loads(line) for line in (ROOT.parent / "shared" / "data" / "prefs" / f"{source}.jsonl").read_text()
            .splitlines() if line.strip()]
    rows = [r for r in rows if r.get("label") in ("A", "B")]
    random.Random(0).shuffle(rows)
    work.mkdir(parents=True, exist_ok=True)
    reviewed, rest = work / "reviewed.jsonl", work / "rest.jsonl"
    reviewed.write_text("".join(json.dumps(r) + "\n" for r in rows[:n]))
    rest.write_text("".join(json.dumps(r) + "\n" for r in rows[n:]))
    db, scores = work / "review.duckdb", work / "eval.duckdb"  # the rest's labels never enter the review store
    started = time.perf_counter()
    result = api.retrain(db, gold=[reviewed], log=lambda m: print(f"retrain: {m}", flush=True))
    seconds = time.perf_counter() - started
    before = api.evaluate(scores, [rest], judge="starter").metrics.accuracy
    after = api.evaluate(scores, [rest], model=result.path, backend="reward").metrics.accuracy
    out = {"source": source, "n": n, "rest": len(rows) - n, "starter": before, "new": after,
           "version": result.version, "method": result.method, "promoted": result.promoted,
           "heldout": [result.heldout_agreement, result.parent_agreement],
           "reference": [result.reference_agreement, result.reference_agreement_before], "retrain_seconds": seconds}
    print(json.dumps(out, indent=2))
    return out


def table(results: dict) -> list[dict]:
    """Per source, strategy and N: mean and sd over seeds of the rest's gain over the starter, and of the others'."""
    import statistics

    rows = []
    keys = sorted({(p["source"], p["strategy"], p["n"]) for p in results["points"]})
    for source, strategy, n in keys:
        pts = [p for p in results["points"] if (p["source"], p["strategy"], p["n"]) == (source, strategy, n)]
        gain = [p["rest"] - p["rest_starter"] for p in pts]
        other = [p["others_mean"] - p["others_starter_mean"] for p in pts]
        rows.append({"source": source, "strategy": strategy, "n": n, "rest": statistics.mean(p["rest"] for p in pts),
                     "rest_starter": statistics.mean(p["rest_starter"] for p in pts),
                     "gain": statistics.mean(gain), "gain_sd": statistics.pstdev(gain),
                     "others_change": statistics.mean(other), "others_change_sd": statistics.pstdev(other),
                     "promoted": sum(p["promoted"] for p in pts), "seeds": len(pts),
                     "reference_change": statistics.mean(p["reference_change"] or 0.0 for p in pts)})
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"{'source':14s} {'strategy':8s} {'N':>4s} {'rest':>6s} {'starter':>7s} {'gain':>13s} {'others':>13s} "
          "promoted reference")
    for r in rows:
        print(f"{r['source']:14s} {r['strategy']:8s} {r['n']:4d} {r['rest']:6.3f} {r['rest_starter']:7.3f} "
              f"{r['gain'] * 100:+6.1f}±{r['gain_sd'] * 100:4.1f} {r['others_change'] * 100:+6.1f}±"
              f"{r['others_change_sd'] * 100:4.1f} {r['promoted']}/{r['seeds']}      {r['reference_change'] * 100:+.1f}")


def markdown(results: dict) -> str:
    """The docs table: per source and N, routed and random side by side (gain over the starter on the rest of the
    source, and the change on the other five), mean +- sd over seeds, and how many seeds promoted."""
    by = {(r["source"], r["strategy"], r["n"]): r for r in results["table"]}
    lines = ["| source (starter) | N | routed: rest | random: rest | routed: other five | random: other five |",
             "|---|---|---|---|---|---|"]
    for source, n in sorted({(s, n) for s, _, n in by}):
        cells = []
        for what in ("gain", "others_change"):
            for strategy in ("routed", "random"):
                r = by.get((source, strategy, n))
                cells.append("-" if r is None else f"{r[what] * 100:+.1f} ± {r[what + '_sd'] * 100:.1f}"
                             + (f" ({r['promoted']}/{r['seeds']})" if what == "gain" else ""))
        lines.append(f"| {source} ({results['starter'][source] * 100:.1f} %) | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: dict, out: Path) -> None:
    """One panel per source: the gain over the starter on the source's unreviewed pairs and the change on the other
    five, routed and random (the unreviewed pairs differ between the two, so gains, not levels, are comparable)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["table"]
    sources = sorted({r["source"] for r in rows})
    fig, axes = plt.subplots(2, 3, figsize=(12, 7), sharey=True)
    for ax, source in zip(axes.flat, sources):
        for strategy, style in (("routed", "-o"), ("random", "--s")):
            pts = [r for r in rows if r["source"] == source and r["strategy"] == strategy]
            xs = [0] + [r["n"] for r in pts]
            ax.errorbar(xs, [0] + [100 * r["gain"] for r in pts], yerr=[0] + [100 * r["gain_sd"] for r in pts],
                        fmt=style, capsize=2, label=f"{strategy}: this source, unreviewed pairs")
            ax.plot(xs, [0] + [100 * r["others_change"] for r in pts], style, alpha=0.4,
                    label=f"{strategy}: the other five (mean)")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_title(f"{source} (starter {100 * results['starter'][source]:.1f} %)")
        ax.set_xlabel("reviewed pairs of this source")
        ax.grid(alpha=0.3)
    axes.flat[0].set_ylabel("agreement change vs the starter (points)")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("Does review pay? the default retrain after N reviewed pairs (mean of 3 seeds, bars: sd)")
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "review_pays.png", dpi=110)
    print(f"wrote {out / 'review_pays.png'}")


if __name__ == "__main__":
    main()
