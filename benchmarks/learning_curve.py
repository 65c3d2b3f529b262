"""How many human labels before `retrain` pays? Agreement on the six dev sets after training on N pairs.

    .venv/bin/python benchmarks/learning_curve.py --work runs/curve \\
        --genrm runs/starter/train.judges/v001-genrm-sft [--bt 250=DIR --bt 1000=DIR ...] [--limit 50]

Points of the genrm-sft curve come from one training run: its version dir holds `snapshots/rows-N` (saved after N
training rows, `train.snapshot_pairs`; with a constant learning rate after warm-up, the snapshot after N rows is
the run on those N rows) and the final adapter (all pairs). N = 0 is the untrained base model (`--judge base`).
Bradley-Terry versions are trained one per size (`labeler retrain --method bt --limit N`) and passed as `N=DIR`.

Every point is scored by `labeler eval` on `../shared/data/prefs/*.jsonl` (`--limit` pairs per file for a quick
curve), in one store, so each judge's judgments are kept and a rerun judges nothing again. Per point: agreement per
source with its Wilson 95 % interval, the macro mean over sources, position consistency and first-shown rates.
Writes `benchmarks/results/learning_curve.json` and `learning_curve.png`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PREFS = ROOT.parent / "shared" / "data" / "prefs"
LABELER = str(Path(sys.executable).with_name("labeler"))


def points(genrm: Path | None, bt: list[str]) -> list[tuple[str, int | None, list[str]]]:
    """(method, pairs trained on (None = all), judge options of `labeler eval`)."""
    out = [("base", 0, ["--judge", "base"])]
    if genrm:
        snapshots = sorted((genrm / "snapshots").glob("rows-*"), key=lambda p: int(p.name.split("-")[1]))
        out += [("genrm-sft", int(p.name.split("-")[1]), ["--model", str(p)]) for p in snapshots]
        out.append(("genrm-sft", None, ["--model", str(genrm)]))
    for spec in bt:
        size, _, path = spec.partition("=")
        out.append(("bt", None if size == "all" else int(size), ["--backend", "reward", "--model", path]))
    return out


def evaluate(work: Path, name: str, judge: list[str], limit: int | None, dtype: str) -> dict:
    out = work / f"eval-{name}"
    files = sorted(str(f) for f in PREFS.glob("*.jsonl"))
    args = [LABELER, "eval", *files, *judge, "--db", str(work / "curve.duckdb"), "--out", str(out), "-q"]
    if limit:
        args += ["--per-file", str(limit)]
    if "--backend" not in judge:
        args += ["--dtype", dtype]
    print("+", shlex.join(args), file=sys.stderr, flush=True)
    subprocess.run(args, check=True)
    m = json.loads((out / "metrics.json").read_text())
    by_source = {s: {"n": g["n"], "accuracy": g["accuracy"], "ci95": g["ci95"],
                     "position_consistency": g["position_consistency"], "a_rate_by_order": g["a_rate_by_order"]}
                 for s, g in m["by_source"].items()}
    return {"n": m["n"], "accuracy": m["accuracy"], "ci95": m["ci95"],
            "macro_agreement": sum(g["accuracy"] for g in by_source.values()) / len(by_source),
            "position_consistency": m["position_consistency"], "a_rate_by_order": m["a_rate_by_order"],
            "by_source": by_source, "judge_id": m["judge_id"]}


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    total = max((r["pairs"] or 0 for r in results), default=0)
    for method, marker in (("genrm-sft", "o"), ("bt", "s")):
        rows = [r for r in results if r["method"] in (method, "base")]
        if len(rows) < 2:
            continue
        xs = [r["pairs"] if r["pairs"] is not None else total for r in rows]
        ys = [r["macro_agreement"] for r in rows]
        lo = [r["accuracy"] - r["ci95"][0] for r in rows]
        hi = [r["ci95"][1] - r["accuracy"] for r in rows]
        ax.errorbar(xs, ys, yerr=[lo, hi], marker=marker, capsize=3, label=f"{method} (macro; bars: pooled 95 % CI)")
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_xscale("symlog", linthresh=250)
    ax.set_xlabel("human-labelled training pairs")
    ax.set_ylabel("agreement with people (6 dev sets)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--genrm", type=Path, help="A genrm-sft version dir with snapshots/.")
    parser.add_argument("--bt", action="append", default=[], help="N=DIR of a Bradley-Terry version (repeatable).")
    parser.add_argument("--limit", type=int, help="Pairs per dev file (default: all).")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for method, pairs, judge in points(args.genrm, args.bt):
        name = f"{method}-{pairs if pairs is not None else 'all'}"
        results.append({"method": method, "pairs": pairs, **evaluate(args.work, name, judge, args.limit, args.dtype)})
        r = results[-1]
        print(f"{name:16s} macro {r['macro_agreement']:.3f}  pooled {r['accuracy']:.3f} "
              f"[{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]  order-consistent {r['position_consistency']}", flush=True)
    result = {"limit_per_file": args.limit, "dtype": args.dtype, "points": results}
    (args.out / "learning_curve.json").write_text(json.dumps(result, indent=2))
    plot(results, args.out / "learning_curve.png")
    print(json.dumps({"macro": {f"{r['method']}-{r['pairs']}": round(r["macro_agreement"], 4) for r in results}}))
    return result


if __name__ == "__main__":
    main()
