"""Does the frozen default model know anything about human preferences? A Bradley-Terry probe, measured.

The cheapest judge the default model can give: no fine-tuning at all. Each response is read alone as the reward
backend reads it (`bt_text`: user turn + assistant response in the chat template, EOS-terminated, cut to its last
`--max-tokens` tokens), the hidden state at the EOS after block `--layer` (final RMSNorm applied, as a model cut
to that many blocks computes it) is its feature, and a logistic regression on the feature difference of the two
responses (no intercept: swapping A and B flips the prediction) is the judge: P(A) = sigmoid(w . (h_A - h_B)).
Only the first `--layer` blocks run (bf16 autocast), so features cost a fraction of a full forward pass.

    python benchmarks/probe_judge.py features --split train --start 0 --pairs 1400   # chunks of 700, resumable
    python benchmarks/probe_judge.py features --split prefs
    python benchmarks/probe_judge.py fit                                             # needs both

`fit` picks the L2 strength by 5-fold cross-validation on the training features (folds split by prompt), fits on
all of them, and reports agreement on the six ../shared/data/prefs files (never trained on): per file with a
Wilson 95 % interval, pooled and macro, beside "the longer response wins" on the same pairs. Results go to
benchmarks/results/probe-<UTC time>.json. Training pairs come shuffled with seed 0 from all of ../shared/data/train.
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
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from labeler.judge.backends.models import default_model_dir
    from labeler.judge.backends.reward import bt_text
    from labeler.judge.prompts import shorten

    torch.set_num_threads(args.threads)
    path = default_model_dir()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    decoder = model.get_decoder()
    decoder.layers = decoder.layers[: args.layer]  # the blocks above never run
    model.config.num_hidden_layers = args.layer
    rows = rows_of(args.split)
    end = len(rows) if args.pairs is None else min(len(rows), args.start + args.pairs)
    args.out.mkdir(parents=True, exist_ok=True)
    for lo in range(args.start, end, CHUNK):
        part = rows[lo : min(lo + CHUNK, end)]
        target = args.out / f"{args.split}-L{args.layer}-{lo:05d}-{lo + len(part):05d}.pt"
        if target.exists():
            continue
        texts = [bt_text(tok, shorten(r["prompt"], 6000), shorten(r[k], 6000)) for r in part
                 for k in ("response_a", "response_b")]
        ids = [tok(t, add_special_tokens=False).input_ids[-args.max_tokens:] for t in texts]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        feats = torch.zeros(len(ids), model.config.hidden_size)
        start = time.perf_counter()
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            for s in range(0, len(order), args.batch_size):
                idx = order[s : s + args.batch_size]
                width = max(len(ids[i]) for i in idx)
                x = torch.full((len(idx), width), tok.pad_token_id)
                mask = torch.zeros_like(x)
                for k, i in enumerate(idx):
                    x[k, width - len(ids[i]):] = torch.tensor(ids[i])
                    mask[k, width - len(ids[i]):] = 1
                out = decoder(input_ids=x, attention_mask=mask, position_ids=(mask.cumsum(1) - 1).clamp(min=0))
                feats[idx] = out.last_hidden_state[:, -1].float()  # the final norm is applied to the last block
        seconds = time.perf_counter() - start
        tokens = sum(map(len, ids))
        torch.save({"feats": feats, "ids": [r["id"] for r in part], "labels": [r["label"] for r in part],
                    "source": [r["source"] for r in part], "prompts": [r["prompt"] for r in part],
                    "chars": [(len(r["response_a"]), len(r["response_b"])) for r in part],
                    "tokens": tokens, "seconds": seconds, "layer": args.layer}, target)
        print(f"{target.name}: {len(ids)} texts, {tokens / seconds:.0f} tokens/s", flush=True)


def load(out: Path, split: str, layer: int) -> dict:
    import torch

    parts = [torch.load(p) for p in sorted(out.glob(f"{split}-L{layer}-*.pt"))]
    if not parts:
        raise SystemExit(f"no {split} features for layer {layer} in {out}: run `features --split {split}` first")
    feats = torch.cat([p["feats"] for p in parts])
    merged = {k: [x for p in parts for x in p[k]] for k in ("ids", "labels", "source", "prompts", "chars")}
    merged["diff"] = feats[0::2] - feats[1::2]
    merged["y"] = torch.tensor([1.0 if label == "A" else 0.0 for label in merged["labels"]])
    merged["tokens"], merged["seconds"] = sum(p["tokens"] for p in parts), sum(p["seconds"] for p in parts)
    return merged


def fit_logistic(x, y, lam: float):
    import torch

    w = torch.zeros(x.shape[1], requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ w, y) + lam * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach()


def wilson(k: float, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def fit(args) -> dict:
    import torch

    train, dev = load(args.out, "train", args.layer), load(args.out, "prefs", args.layer)
    scale = train["diff"].std(0) + 1e-6
    x, y = train["diff"] / scale, train["y"]
    prompts = sorted(set(train["prompts"]))
    random.Random(1).shuffle(prompts)
    fold_of = {p: i % 5 for i, p in enumerate(prompts)}
    folds = torch.tensor([fold_of[p] for p in train["prompts"]])
    cv = {}
    for lam in args.lams:
        correct = 0
        for k in range(5):
            w = fit_logistic(x[folds != k], y[folds != k], lam)
            correct += int(((x[folds == k] @ w > 0).float() == y[folds == k]).sum())
        cv[lam] = correct / len(y)
        print(f"lambda {lam:g}: 5-fold CV agreement on train {cv[lam]:.3f}", flush=True)
    lam = max(cv, key=cv.get)
    w = fit_logistic(x, y, lam)
    p_a = torch.sigmoid((dev["diff"] / scale) @ w)
    result = {"layer": args.layer, "train_pairs": len(y), "lambda": lam, "cv_agreement": cv,
              "feature_tokens_per_s": train["tokens"] / train["seconds"], "sources": {}}
    by_source: dict[str, list[int]] = {}
    for i, s in enumerate(dev["source"]):
        by_source.setdefault(s, []).append(i)
    for s, idx in sorted(by_source.items()):
        right = sum(int((p_a[i] > 0.5) == (dev["labels"][i] == "A")) for i in idx)
        a, b = dev["chars"], dev["labels"]
        longer = sum(1.0 if a[i][0] == a[i][1] else float((a[i][0] > a[i][1]) == (b[i] == "A")) for i in idx)
        result["sources"][s] = {"pairs": len(idx), "agreement": right / len(idx), "ci95": wilson(right, len(idx)),
                                "longer_wins": longer / len(idx)}
    n = len(dev["labels"])
    right = sum(int((p_a[i] > 0.5) == (dev["labels"][i] == "A")) for i in range(n))
    result["pooled"] = {"pairs": n, "agreement": right / n, "ci95": wilson(right, n)}
    result["macro"] = sum(v["agreement"] for v in result["sources"].values()) / len(result["sources"])
    result["macro_longer_wins"] = sum(v["longer_wins"] for v in result["sources"].values()) / len(result["sources"])
    print(f"\nlayer {args.layer}, {len(y)} training pairs, lambda {lam:g}")
    print(f"{'source':<16} {'pairs':>5} {'agreement':>9} {'95% CI':>15} {'longer wins':>11}")
    for s, v in result["sources"].items():
        print(f"{s:<16} {v['pairs']:>5} {v['agreement']:>9.1%} {v['ci95'][0]:>7.1%}-{v['ci95'][1]:<7.1%} "
              f"{v['longer_wins']:>11.1%}")
    print(f"{'pooled':<16} {n:>5} {result['pooled']['agreement']:>9.1%}   macro {result['macro']:.1%} "
          f"(longer wins {result['macro_longer_wins']:.1%})")
    out = ROOT / "benchmarks" / "results" / f"probe-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return result


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
    g = sub.add_parser("fit")
    g.add_argument("--lams", type=float, nargs="+", default=[0.03, 0.1, 0.3, 1.0])
    for q in (f, g):
        q.add_argument("--layer", type=int, default=8, help="Feature after this many blocks.")
        q.add_argument("--out", type=Path, default=Path("probe-features"), help="Feature folder.")
    args = p.parse_args(argv)
    {"features": features, "fit": fit}[args.step](args)


if __name__ == "__main__":
    sys.exit(main())
