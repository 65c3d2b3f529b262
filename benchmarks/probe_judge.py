"""The bt-probe judge measured from cached features: cross-validation, the learning curve, the dev table.

`labeler retrain --method bt-probe` (trainer/probe.py) reads each response once with the base model's first blocks
and fits Bradley-Terry heads on the features. This benchmark computes the same features once for all of
../shared/data/train and ../shared/data/prefs (so the curve costs one feature pass, not one per point) and fits the
same heads (`trainer.probe.fit_head`): each response is read as the reward backend reads it (`bt_text`: user turn +
assistant response in the chat template, EOS-terminated, cut to its last `--max-tokens` tokens); its feature is the
hidden state at the EOS after `--layer` blocks (final RMSNorm applied), bf16 autocast.

    python benchmarks/probe_judge.py features --split train --layers 8 --out runs/probe   # chunks of 700, resumable
    python benchmarks/probe_judge.py features --split prefs --layers 8 --out runs/probe
    python benchmarks/probe_judge.py features --base larger --no-bf16 --split train --pairs 1500 --layers 4 8 12 16 20 \
        --out runs/probe-0.5b          # the larger base (issue 28), one feature folder per base
    python benchmarks/probe_judge.py fit --layer 8 --out runs/probe [--safety-sources hh_harmless]

`fit` picks the L2 strength by 5-fold cross-validation on the training pairs (folds by prompt; macro agreement over
the training sources), then fits on the first N pairs of the seed-0 shuffle of all training files for each
`--sizes` N and on all of them, and scores each on the six dev files (never trained on): agreement per file with a
Wilson 95 % interval and the macro mean, beside "the longer response wins". Order consistency is 100 % and the
first-shown rate is the share of A labels by construction (the reward is read per response). Writes
benchmarks/results/probe-L<layer>-<UTC time>.json; `plot RESULT.json ...` draws them into one PNG.
"""

import argparse
import json
import math
import random
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CHUNK = 700


def rows_of(split: str) -> list[dict]:
    rows = []
    for f in sorted((DATA / split).glob("*.jsonl")):
        rows += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    random.Random(0).shuffle(rows)
    return rows


def features(args) -> None:
    import torch
    from transformers import AutoTokenizer

    from labeler.judge.backends.models import default_model_dir
    from labeler.judge.backends.probe import features as read_features
    from labeler.judge.backends.probe import load_trunk
    from labeler.judge.backends.reward import bt_text
    from labeler.judge.prompts import shorten

    torch.set_num_threads(args.threads)
    path = default_model_dir() if args.base == "default" else larger_model_dir()
    tok = AutoTokenizer.from_pretrained(path)
    layers = sorted(args.layers)
    trunk = load_trunk(path, layers[-1])  # the blocks above never run
    rows = rows_of(args.split)
    end = len(rows) if args.pairs is None else min(len(rows), args.start + args.pairs)
    args.out.mkdir(parents=True, exist_ok=True)
    for lo in range(args.start, end, CHUNK):
        part = rows[lo : min(lo + CHUNK, end)]
        targets = {k: args.out / f"{args.split}-L{k}-{lo:05d}-{lo + len(part):05d}.pt" for k in layers}
        if all(t.exists() for t in targets.values()):
            continue
        texts = [bt_text(tok, shorten(r["prompt"], 6000), shorten(r[k], 6000)) for r in part
                 for k in ("response_a", "response_b")]
        start = time.perf_counter()
        feats = read_features(trunk, tok, texts, args.max_tokens, args.batch_size, bf16=args.bf16, layers=layers)
        seconds = time.perf_counter() - start
        tokens = sum(min(len(tok(t, add_special_tokens=False).input_ids), args.max_tokens) for t in texts)
        for k, (layer, target) in enumerate(targets.items()):
            torch.save({"feats": feats[k], "ids": [r["id"] for r in part], "labels": [r["label"] for r in part],
                        "source": [r["source"] for r in part], "prompts": [r["prompt"] for r in part],
                        "chars": [(len(r["response_a"]), len(r["response_b"])) for r in part],
                        "tokens": tokens, "seconds": seconds, "layer": layer}, target)
        print(f"{targets[layers[-1]].name}: {len(texts)} texts, {tokens / seconds:.0f} tokens/s", flush=True)


def larger_model_dir() -> Path:
    """Qwen2.5-Coder-0.5B-Instruct (issue 28): its GGUF fetched and checked once, converted once, both cached."""
    from labeler.judge.backends.larger_weights import MODEL_NAME, cached_dir, find_larger_gguf
    from labeler.judge.backends.models import _convert, _is_complete
    from labeler.paths import atomic_path

    gguf = find_larger_gguf()
    target = cached_dir().parent.parent / "models" / cached_dir().name
    if not _is_complete(target):
        print(f"converting {MODEL_NAME} to {target} (once)", file=sys.stderr, flush=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            _convert(gguf, tmp)
    return target


def load(out: Path, split: str, layer: int) -> dict:
    """The features of one split and layer: per pair, the better and the worse response's (by the human label)."""
    import torch

    parts = [torch.load(p) for p in sorted(out.glob(f"{split}-L{layer}-*.pt"))]
    if not parts:
        raise SystemExit(f"no {split} features for layer {layer} in {out}: run `features --split {split}` first")
    feats = torch.cat([p["feats"] for p in parts])
    merged = {k: [x for p in parts for x in p[k]] for k in ("ids", "labels", "source", "prompts", "chars")}
    a_wins = torch.tensor([label == "A" for label in merged["labels"]])[:, None]
    merged["better"] = torch.where(a_wins, feats[0::2], feats[1::2])
    merged["worse"] = torch.where(a_wins, feats[1::2], feats[0::2])
    merged["tokens"], merged["seconds"] = sum(p["tokens"] for p in parts), sum(p["seconds"] for p in parts)
    return merged


def wilson(k: float, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def config(args, l2: float):
    from trainer.config import ProbeTrainConfig

    return ProbeTrainConfig(layers=args.layer, l2=l2, safety_sources=",".join(args.safety_sources))


def fit_rows(data: dict, idx, cfg):
    import torch

    from trainer.probe import fit_head

    wanted = cfg.safety_set()
    safety = torch.tensor([data["source"][i] in wanted for i in idx])
    return fit_head(data["better"][idx], data["worse"][idx], safety, cfg)


def right(head, data: dict) -> list[bool]:
    return (head.rewards(data["better"]) > head.rewards(data["worse"])).tolist()


def by_source(ok: list[bool], sources: list[str]) -> dict:
    groups: dict[str, list[bool]] = {}
    for o, s in zip(ok, sources):
        groups.setdefault(s, []).append(o)
    return {s: {"pairs": len(v), "agreement": sum(v) / len(v), "ci95": wilson(sum(v), len(v))}
            for s, v in sorted(groups.items())}


def prompt_folds(prompts: list[str], k: int = 5) -> list[int]:
    """The fold of each pair: pairs that share a prompt share a fold."""
    distinct = sorted(set(prompts))
    random.Random(1).shuffle(distinct)
    fold_of = {p: i % k for i, p in enumerate(distinct)}
    return [fold_of[p] for p in prompts]


def cross_validate(args, train: dict) -> dict:
    """5-fold CV by prompt on the training pairs: macro agreement over the training sources, per L2 strength."""
    folds = prompt_folds(train["prompts"])
    cv = {}
    for l2 in args.l2s:
        ok = [False] * len(folds)
        for k in range(5):
            fit_idx = [i for i, f in enumerate(folds) if f != k]
            test_idx = [i for i, f in enumerate(folds) if f == k]
            head = fit_rows(train, fit_idx, config(args, l2))
            sub = {key: train[key][test_idx] for key in ("better", "worse")}
            for i, o in zip(test_idx, right(head, sub)):
                ok[i] = o
        table = by_source(ok, train["source"])
        cv[l2] = {"macro": sum(v["agreement"] for v in table.values()) / len(table), "by_source": table}
        print(f"L2 {l2:g}: 5-fold CV macro agreement on train {cv[l2]['macro']:.3f} "
              + " ".join(f"{s} {v['agreement']:.3f}" for s, v in table.items()), flush=True)
    return cv


def fit(args) -> dict:
    """CV picks the L2 strength; then one head per training size, each scored on the six dev files."""
    train, dev = load(args.out, "train", args.layer), load(args.out, "prefs", args.layer)
    cv = cross_validate(args, train)
    l2 = max(cv, key=lambda k: cv[k]["macro"])
    result = {"layer": args.layer, "safety_sources": args.safety_sources, "l2": l2, "cv": cv,
              "feature_tokens_per_s": train["tokens"] / train["seconds"], "curve": {}}
    sizes = sorted({min(n, len(train["labels"])) for n in args.sizes} | {len(train["labels"])})
    a, labels = dev["chars"], dev["labels"]
    longer = [a[i][0] != a[i][1] and (a[i][0] > a[i][1]) == (labels[i] == "A") for i in range(len(labels))]
    result["longer_wins"] = by_source(longer, dev["source"])
    print(f"\nlayer {args.layer}, L2 {l2:g}, safety sources {args.safety_sources or 'none'}")
    print(f"{'pairs':>6} " + " ".join(f"{s[:12]:>12}" for s in sorted(set(dev["source"]))) + f" {'macro':>6}")
    for n in sizes:
        table = by_source(right(fit_rows(train, list(range(n)), config(args, l2)), dev), dev["source"])
        macro = sum(v["agreement"] for v in table.values()) / len(table)
        result["curve"][n] = {"by_source": table, "macro": macro}
        print(f"{n:>6} " + " ".join(f"{v['agreement']:>12.1%}" for v in table.values()) + f" {macro:>6.1%}", flush=True)
    macro_longer = sum(v["agreement"] for v in result["longer_wins"].values()) / len(result["longer_wins"])
    print(f"{'longer':>6} " + " ".join(f"{v['agreement']:>12.1%}" for v in result["longer_wins"].values())
          + f" {macro_longer:>6.1%}")
    stamp = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"
    out = args.json or ROOT / "benchmarks" / "results" / f"probe-L{args.layer}-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return result


def plot(results: list[dict], path: Path) -> None:
    """Macro agreement and the two HH sources against training pairs, one line style per fit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for result, style in zip(results, ("-", "--", ":", "-.")):
        name = "gated (safety: " + ", ".join(result["safety_sources"]) + ")" if result["safety_sources"] else "one reward"
        sizes = sorted(result["curve"], key=int)
        x = [int(n) for n in sizes]
        ax.plot(x, [result["curve"][n]["macro"] for n in sizes], style, marker="o", color="black", linewidth=2,
                label=f"macro, {name}")
        for source, color in (("hh_helpful", "tab:blue"), ("hh_harmless", "tab:red")):
            ax.plot(x, [result["curve"][n]["by_source"][source]["agreement"] for n in sizes], style, marker=".",
                    color=color, label=f"{source}, {name}")
    ax.axhline(0.5, color="grey", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("training pairs (../shared/data/train, seed-0 shuffle)")
    ax.set_ylabel("agreement with people, dev sets")
    ax.set_title(f"bt-probe after {results[0]['layer']} blocks: learning curve on the six dev sets")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_step(args) -> None:
    results = [json.loads(Path(f).read_text()) for f in args.results]
    plot(results, args.png)
    print(f"wrote {args.png}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="step", required=True)
    f = sub.add_parser("features")
    f.add_argument("--split", choices=("train", "prefs"), required=True)
    f.add_argument("--start", type=int, default=0, help="First pair (of the seed-0 shuffle).")
    f.add_argument("--pairs", type=int, default=None, help="How many (default: all).")
    f.add_argument("--batch-size", type=int, default=8)
    f.add_argument("--max-tokens", type=int, default=320, help="Keep the last N tokens of each text.")
    f.add_argument("--threads", type=int, default=2)
    f.add_argument("--base", choices=("default", "larger"), default="default",
                   help="larger: Qwen2.5-Coder-0.5B-Instruct, fetched and checked on first use (issue 28).")
    f.add_argument("--no-bf16", dest="bf16", action="store_false",
                   help="float32 features (on a CPU without bf16 units, e.g. AVX2 only, bf16 autocast is the slower)")
    g = sub.add_parser("fit")
    g.add_argument("--l2s", type=float, nargs="+", default=[0.1, 0.3, 1.0, 3.0])
    g.add_argument("--safety-sources", nargs="*", default=["hh_harmless"],
                   help="Sources whose pairs train the safety reward (none: one reward).")
    g.add_argument("--sizes", type=int, nargs="+", default=[250, 1000, 4000], help="Training sizes of the curve.")
    g.add_argument("--json", type=Path, default=None, help="Result file (default: results/probe-L<layer>-<time>.json).")
    f.add_argument("--layers", type=int, nargs="+", default=[8], help="Features after these many blocks (one pass).")
    g.add_argument("--layer", type=int, default=8, help="Feature after this many blocks.")
    c = sub.add_parser("plot", help="One PNG of the curves of `fit` results.")
    c.add_argument("results", nargs="+", type=Path)
    c.add_argument("--png", type=Path, default=ROOT / "docs" / "images" / "learning_curve.png")
    for q in (f, g):
        q.add_argument("--out", type=Path, default=Path("probe-features"), help="Feature folder.")
    args = p.parse_args(argv)
    {"features": features, "fit": fit, "plot": plot_step}[args.step](args)


if __name__ == "__main__":
    sys.exit(main())
