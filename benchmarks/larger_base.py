"""Issue 28, step 1: is the larger base (Qwen2.5-Coder-0.5B-Instruct) a better feature reader for the probe judge
than the default model (SmolLM2-135M-Instruct)? Same 1,500 training pairs, same dev pairs, same heads.

Features come from `probe_judge.py features` (one folder per base; the training sample is the first 1,500 pairs of
the seed-0 shuffle of ../shared/data/train, all sources), bf16 autocast for both bases (this box has avx512_bf16:
2.0x the float32 rate on the larger base; float32 would not fit the session), several depths per base in one pass:

    python benchmarks/probe_judge.py features --base default --split train --pairs 1500 --layers 4 8 12 16 20 24 \
        --threads 1 --out runs/base-default
    python benchmarks/probe_judge.py features --base larger --split train --pairs 1500 --layers 4 8 12 16 \
        --threads 1 --out runs/base-larger
    python benchmarks/larger_base.py layers runs/base-default runs/base-larger      # CV picks each base's depth
    python benchmarks/probe_judge.py features --base default --split prefs --layers L --out runs/base-default
    python benchmarks/probe_judge.py features --base larger --split prefs --layers L --out runs/base-larger
    python benchmarks/larger_base.py table runs/base-default runs/base-larger        # dev table and the decision
    python benchmarks/larger_base.py speed --layers 8 12                            # tokens/s, both bases alternated

`layers`: for each base, each depth and each head (gated: a separate hh_harmless reward mixed by a learnt gate, as
the starter; one-reward), 5-fold cross-validation by prompt on the training sample at each L2 strength of --l2s (the
best one kept); the depth with the best CV macro (over the training sources) is chosen per base and head, before
any dev pair is read. `table`: a head fitted on all 1,500 pairs at that depth, its agreement per dev source with a
Wilson 95 % interval, macro and pooled, beside the CV macro; then the issue's decision rule: go on only if the
larger base is >= 2 points better in CV macro AND in dev macro (compared head for head). Writes
benchmarks/results/larger-base.json. `speed`: feature tokens/s of each base on the same texts, rounds alternating.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import probe_judge as pj  # noqa: E402

RESULT = ROOT / "benchmarks" / "results" / "larger-base.json"
HEADS = {"gated": ["hh_harmless"], "one-reward": []}


def base_name(folder: Path) -> str:
    return "larger" if "larger" in folder.name else "default"


def depths(folder: Path, split: str = "train") -> list[int]:
    return sorted({int(p.name.split("-")[1][1:]) for p in folder.glob(f"{split}-L*-*.pt")})


def cv_table(folder: Path, l2s: list[float]) -> dict:
    """{head: {depth: {"macro", "l2", "by_source"}}} from 5-fold CV by prompt on the training sample."""
    out: dict = {head: {} for head in HEADS}
    for layer in depths(folder):
        train = pj.load(folder, "train", layer)
        for head, safety in HEADS.items():
            args = argparse.Namespace(l2s=l2s, safety_sources=safety, layer=layer)
            print(f"{base_name(folder)} L{layer} {head}", flush=True)
            cv = pj.cross_validate(args, train)
            l2 = max(cv, key=lambda k: cv[k]["macro"])
            out[head][layer] = {"macro": cv[l2]["macro"], "l2": l2, "by_source": cv[l2]["by_source"],
                                "pairs": len(train["labels"]),
                                "feature_tokens_per_s_during_pass": train["tokens"] / train["seconds"]}
    return out


def layers_step(args) -> dict:
    result = json.loads(RESULT.read_text()) if RESULT.exists() else {}
    for folder in args.folders:
        cv = cv_table(folder, args.l2s)
        chosen = {head: max(table, key=lambda k: table[k]["macro"]) for head, table in cv.items()}
        result[base_name(folder)] = {"folder": str(folder), "cv": cv, "chosen_layer": chosen}
        print(f"{base_name(folder)}: chosen depth " + ", ".join(f"{h} L{k}" for h, k in chosen.items()), flush=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    return result


def dev_scores(folder: Path, layer: int, l2: float, safety: list[str]) -> dict:
    train, dev = pj.load(folder, "train", layer), pj.load(folder, "prefs", layer)
    cfg = pj.config(argparse.Namespace(layer=layer, safety_sources=safety), l2)
    ok = pj.right(pj.fit_rows(train, list(range(len(train["labels"]))), cfg), dev)
    table = pj.by_source(ok, dev["source"])
    lo, hi = pj.wilson(sum(ok), len(ok))
    return {"by_source": table, "macro": sum(v["agreement"] for v in table.values()) / len(table),
            "pooled": sum(ok) / len(ok), "pooled_ci95": (lo, hi), "pairs": len(ok)}


def table_step(args) -> dict:
    result = json.loads(RESULT.read_text())
    for folder in args.folders:
        entry = result[base_name(folder)]
        entry["dev"] = {}
        for head, safety in HEADS.items():
            layer = entry["chosen_layer"][head]
            l2 = entry["cv"][head][str(layer)]["l2"]
            entry["dev"][head] = dev_scores(folder, int(layer), l2, safety) | {"layer": int(layer), "l2": l2}
    result["decision"] = decide(result)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    return result


def decide(result: dict) -> dict:
    """The issue's rule, head for head: larger >= 2 points better in CV macro and in dev macro."""
    out = {}
    for head in HEADS:
        small, large = result["default"], result["larger"]
        cv_gain = large["cv"][head][str(large["chosen_layer"][head])]["macro"] - \
            small["cv"][head][str(small["chosen_layer"][head])]["macro"]
        dev_gain = large["dev"][head]["macro"] - small["dev"][head]["macro"]
        out[head] = {"cv_macro_gain": cv_gain, "dev_macro_gain": dev_gain,
                     "go_on": cv_gain >= 0.02 and dev_gain >= 0.02}
    out["go_on"] = any(v["go_on"] for v in out.values())
    return out


def markdown(result: dict) -> str:
    sources = sorted(result["default"]["dev"]["gated"]["by_source"])
    lines = ["| base | head | depth | L2 | CV macro (train 1,500) | " + " | ".join(sources)
             + " | dev macro | dev pooled [95 % CI] |", "|---" * (len(sources) + 6) + "|"]
    for base in ("default", "larger"):
        for head in HEADS:
            dev = result[base]["dev"][head]
            cv = result[base]["cv"][head][str(dev["layer"])]["macro"]
            cells = [f"{dev['by_source'][s]['agreement']:.1%} [{dev['by_source'][s]['ci95'][0]:.0%}, "
                     f"{dev['by_source'][s]['ci95'][1]:.0%}]" for s in sources]
            lo, hi = dev["pooled_ci95"]
            lines.append(f"| {base} | {head} | {dev['layer']} | {dev['l2']:g} | {cv:.1%} | " + " | ".join(cells)
                         + f" | {dev['macro']:.1%} | {dev['pooled']:.1%} [{lo:.1%}, {hi:.1%}] |")
    lines.append("")
    lines.append("CV macro per depth (best L2 per depth):")
    for base in ("default", "larger"):
        for head in HEADS:
            row = result[base]["cv"][head]
            lines.append(f"- {base}, {head}: " + ", ".join(f"L{k} {v['macro']:.1%}" for k, v in row.items()))
    for head, d in result["decision"].items():
        if head != "go_on":
            lines.append(f"- {head}: larger - default = CV macro {d['cv_macro_gain'] * 100:+.1f}, dev macro "
                         f"{d['dev_macro_gain'] * 100:+.1f} points -> {'go on' if d['go_on'] else 'stop'}")
    lines.append(f"Decision: {'go on to step 3' if result['decision']['go_on'] else 'stop at step 1'}")
    return "\n".join(lines)


def speed_step(args) -> dict:
    """Feature tokens/s of both bases on the same 2 x --pairs dev texts, --rounds rounds alternating."""
    import torch
    from transformers import AutoTokenizer

    from labeler.judge.backends.models import default_model_dir
    from labeler.judge.backends.probe import features, load_trunk
    from labeler.judge.backends.reward import bt_text
    from labeler.judge.prompts import shorten

    torch.set_num_threads(args.threads)
    rows = pj.rows_of("prefs")[: args.pairs]
    readers = {}
    for base, layer in zip(("default", "larger"), args.layers):
        path = default_model_dir() if base == "default" else pj.larger_model_dir()
        tok = AutoTokenizer.from_pretrained(path)
        texts = [bt_text(tok, shorten(r["prompt"], 6000), shorten(r[k], 6000)) for r in rows
                 for k in ("response_a", "response_b")]
        tokens = sum(min(len(tok(t, add_special_tokens=False).input_ids), 320) for t in texts)
        readers[base] = (load_trunk(path, layer), tok, texts, tokens, layer)
    runs = [(base, bf16) for base in readers for bf16 in (True, False)]
    rates: dict[tuple, list[float]] = {run: [] for run in runs}
    for _ in range(args.rounds):
        for base, bf16 in runs:
            trunk, tok, texts, tokens, layer = readers[base]
            start = time.perf_counter()
            features(trunk, tok, texts, 320, 8, bf16=bf16)
            rates[base, bf16].append(tokens / (time.perf_counter() - start))
    out = {}
    for (base, bf16), r in rates.items():
        trunk, tok, texts, tokens, layer = readers[base]
        median = sorted(r)[len(r) // 2]
        out[f"{base}-{'bf16' if bf16 else 'fp32'}"] = v = {
            "layer": layer, "tokens": tokens, "texts": len(texts), "tokens_per_s": median, "rounds": r,
            "pairs_per_s": median * len(texts) / tokens / 2}
        print(f"{base}, {'bf16 autocast' if bf16 else 'float32'} (features after {layer} blocks, {args.threads} "
              f"threads): {median:.0f} tokens/s median of {args.rounds}, {v['pairs_per_s']:.2f} pairs/s", flush=True)
    for p in ("bf16", "fp32"):
        print(f"larger / default, {p}: {out[f'larger-{p}']['tokens_per_s'] / out[f'default-{p}']['tokens_per_s']:.2f}x")
    if RESULT.exists():
        result = json.loads(RESULT.read_text())
        result["speed"] = out | {"threads": args.threads}
        RESULT.write_text(json.dumps(result, indent=2) + "\n")
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="step", required=True)
    for name in ("layers", "table"):
        q = sub.add_parser(name)
        q.add_argument("folders", nargs="+" if name == "layers" else 2, type=Path,
                       help="Feature folders (a name with 'larger' in it is the larger base's).")
        q.add_argument("--l2s", type=float, nargs="+", default=[0.1, 0.3, 1.0, 3.0])
    s = sub.add_parser("speed")
    s.add_argument("--layers", type=int, nargs=2, required=True, help="Depth read for the default and larger base.")
    s.add_argument("--pairs", type=int, default=48)
    s.add_argument("--rounds", type=int, default=3)
    s.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    {"layers": layers_step, "table": table_step, "speed": speed_step}[args.step](args)


if __name__ == "__main__":
    main()
