"""Does fine-tuning beat the frozen probe? Bradley-Terry training of the blocks above the probe's cut, measured.

The shipped starter (bt-probe) reads each response once with the base model's first 8 blocks and fits a linear
reward on the EOS state; nothing of the model learns. Here the next `--blocks` blocks (initialised from the base
model) and a reward head are trained with the Bradley-Terry loss on the frozen states after block `--cut`, so the
expensive lower blocks run once (`cache`) and each training step runs only the trained blocks, on the last `--tail`
positions of each response (their original positions; the lower blocks' states already carry the context).

    python benchmarks/top_blocks.py cache --split train --out runs/top     # chunks of 700 pairs, resumable
    python benchmarks/top_blocks.py cache --split prefs --out runs/top
    python benchmarks/top_blocks.py train --out runs/top --epochs 2
    python benchmarks/top_blocks.py mix --rewards R.pt [--safety-rewards S.pt] --features F   # F: probe_judge's

`train` holds out 5 % of the training prompts, reports its agreement after each half epoch beside the six dev
files' (per file and the macro mean; never trained on) and the seconds, and writes
benchmarks/results/top-blocks-<UTC time>.json; with `--sources` it trains on those training sources only. `mix`
puts rewards saved by `train --save-rewards` behind the shipped starter's safety gate (see its docstring).
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
sys.path.insert(0, str(ROOT / "benchmarks"))

from probe_judge import by_source, rows_of  # noqa: E402
from probe_judge import load as load_features  # noqa: E402  (the bt-probe features, for the starter's head)

CHUNK = 700


def cache(args) -> None:
    import torch
    from transformers import AutoTokenizer

    from labeler.judge.backends.models import default_model_dir
    from labeler.judge.backends.padding import left_pad, positions_from_mask
    from labeler.judge.backends.probe import load_trunk
    from labeler.judge.backends.reward import bt_text
    from labeler.judge.prompts import shorten

    torch.set_num_threads(args.threads)
    path = default_model_dir()
    tok = AutoTokenizer.from_pretrained(path)
    trunk = load_trunk(path, args.cut)
    rows = rows_of(args.split)[: args.pairs]
    args.out.mkdir(parents=True, exist_ok=True)
    for lo in range(0, len(rows), CHUNK):
        part = rows[lo : lo + CHUNK]
        target = args.out / f"{args.split}-C{args.cut}-T{args.tail}-{lo:05d}.pt"
        if target.exists():
            continue
        texts = [bt_text(tok, shorten(r["prompt"], 6000), shorten(r[k], 6000)) for r in part
                 for k in ("response_a", "response_b")]
        ids = [tok(t, add_special_tokens=False).input_ids[-args.max_tokens:] for t in texts]
        states = torch.zeros(len(ids), args.tail, trunk.config.hidden_size, dtype=torch.bfloat16)
        mask = torch.zeros(len(ids), args.tail, dtype=torch.bool)
        positions = torch.zeros(len(ids), args.tail, dtype=torch.long)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        start = time.perf_counter()
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            for s in range(0, len(order), 8):
                idx = order[s : s + 8]
                x, m = left_pad([ids[i] for i in idx], tok.pad_token_id, "cpu")
                pos = positions_from_mask(m)
                out = trunk(input_ids=x, attention_mask=m, position_ids=pos, output_hidden_states=True)
                h = out.hidden_states[args.cut]  # the residual stream after block `cut`, before any norm
                width = min(args.tail, h.shape[1])
                states[idx, -width:] = h[:, -width:].to(torch.bfloat16)
                mask[idx, -width:] = m[:, -width:].bool()
                positions[idx, -width:] = pos[:, -width:]
        torch.save({"states": states, "mask": mask, "positions": positions, "labels": [r["label"] for r in part],
                    "source": [r["source"] for r in part], "prompts": [r["prompt"] for r in part],
                    "seconds": time.perf_counter() - start}, target)
        print(f"{target.name}: {len(texts)} texts in {time.perf_counter() - start:.0f} s", flush=True)


def load(out: Path, split: str, cut: int, tail: int) -> dict:
    import torch

    parts = [torch.load(p) for p in sorted(out.glob(f"{split}-C{cut}-T{tail}-*.pt"))]
    if not parts:
        raise SystemExit(f"no cached {split} states in {out}: run `cache --split {split}` first")
    data = {k: torch.cat([p[k] for p in parts]) for k in ("states", "mask", "positions")}
    data.update({k: [x for p in parts for x in p[k]] for k in ("labels", "source", "prompts")})
    return data


class TopBlocks:
    """Blocks cut..cut+blocks-1 of the base model, its final norm, and a linear reward on the last position."""

    def __init__(self, cut: int, blocks: int):
        import torch
        from transformers import AutoModel

        from labeler.judge.backends.models import default_model_dir

        model = AutoModel.from_pretrained(default_model_dir(), dtype=torch.float32)
        model.layers = model.layers[cut : cut + blocks]
        model.config.num_hidden_layers = blocks
        model.embed_tokens = None  # inputs are the cached states
        self.model = model.train()
        self.head = torch.nn.Linear(model.config.hidden_size, 1, bias=False)
        torch.nn.init.zeros_(self.head.weight)

    def parameters(self):
        return [*self.model.layers.parameters(), *self.model.norm.parameters(), *self.head.parameters()]

    def rewards(self, states, mask, positions):
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16):
            h = self.model(inputs_embeds=states.float(), attention_mask=mask.long(), position_ids=positions,
                           use_cache=False)
        return self.head(h.last_hidden_state[:, -1].float()).squeeze(-1)


def agreement(model, data: dict, idx: list[int], batch: int = 64) -> list[bool]:
    import torch

    model.model.eval()
    ok = []
    with torch.inference_mode():
        for s in range(0, len(idx), batch):
            rows = idx[s : s + batch]
            texts = [2 * i + k for i in rows for k in (0, 1)]
            r = model.rewards(data["states"][texts], data["mask"][texts], data["positions"][texts])
            a_wins = r[0::2] > r[1::2]
            ok += [bool(w) == (data["labels"][i] == "A") for w, i in zip(a_wins.tolist(), rows)]
    model.model.train()
    return ok


def macro(ok: list[bool], sources: list[str]) -> dict:
    table = by_source(ok, sources)
    return {"by_source": table, "macro": sum(v["agreement"] for v in table.values()) / len(table)}


def train(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    tr, dev = load(args.out, "train", args.cut, args.tail), load(args.out, "prefs", args.cut, args.tail)
    prompts = sorted(set(tr["prompts"]))
    random.Random(2).shuffle(prompts)
    held_prompts = set(prompts[: len(prompts) // 20])
    held = [i for i, p in enumerate(tr["prompts"]) if p in held_prompts]
    fit = [i for i, p in enumerate(tr["prompts"]) if p not in held_prompts
           and (not args.sources or tr["source"][i] in args.sources)]
    model = TopBlocks(args.cut, args.blocks)
    head_params = list(model.head.parameters())
    opt = torch.optim.AdamW([{"params": [p for p in model.parameters() if all(p is not h for h in head_params)],
                              "lr": args.lr}, {"params": head_params, "lr": args.head_lr}], weight_decay=0.01)
    steps = args.epochs * math.ceil(len(fit) / args.batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 20) * max(0.0, 1 - s / steps))
    result = {"command": " ".join(sys.argv), "cut": args.cut, "blocks": args.blocks, "tail": args.tail,
              "epochs": args.epochs, "lr": args.lr, "head_lr": args.head_lr, "batch": args.batch,
              "sources": args.sources, "train_pairs": len(fit), "held_out_pairs": len(held), "evals": []}
    dev_idx = list(range(len(dev["labels"])))

    def evaluate(epoch: float, seconds: float) -> None:
        h = agreement(model, tr, held)
        d = macro(agreement(model, dev, dev_idx), dev["source"])
        result["evals"].append({"epoch": epoch, "seconds": seconds, "held_out": sum(h) / len(h), "dev": d})
        print(f"epoch {epoch:.1f} ({seconds:.0f} s): held-out {sum(h) / len(h):.1%}, dev macro {d['macro']:.1%} "
              + " ".join(f"{s} {v['agreement']:.1%}" for s, v in d["by_source"].items()), flush=True)

    start, step = time.perf_counter(), 0
    for epoch in range(args.epochs):
        order = fit[:]
        random.Random(args.seed + epoch).shuffle(order)
        batches = [order[s : s + args.batch] for s in range(0, len(order), args.batch)]
        for b, rows in enumerate(batches):
            better = [2 * i + (0 if tr["labels"][i] == "A" else 1) for i in rows]
            worse = [2 * i + (1 if tr["labels"][i] == "A" else 0) for i in rows]
            texts = better + worse
            r = model.rewards(tr["states"][texts], tr["mask"][texts], tr["positions"][texts])
            loss = -torch.nn.functional.logsigmoid(r[: len(rows)] - r[len(rows):]).mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            if step % 50 == 0:
                print(f"step {step}/{steps} loss {loss.item():.3f} ({time.perf_counter() - start:.0f} s)", flush=True)
            if b + 1 == len(batches) // 2 or b + 1 == len(batches):
                evaluate(epoch + (b + 1) / len(batches), time.perf_counter() - start)
    if args.save_rewards:
        rewards = {}
        model.model.eval()
        with torch.inference_mode():
            for name, data in (("train", tr), ("prefs", dev)):
                parts = [model.rewards(data["states"][s : s + 128], data["mask"][s : s + 128],
                                       data["positions"][s : s + 128]) for s in range(0, len(data["states"]), 128)]
                rewards[name] = torch.cat(parts)  # per response, in `rows_of` order: pair i is 2i (A), 2i + 1 (B)
        torch.save({**rewards, "held_out": held}, args.save_rewards)
    stamp = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"
    out = ROOT / "benchmarks" / "results" / f"top-blocks-{stamp}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return result


def mix(args) -> dict:
    """The shipped starter's gate with trained rewards in place of (or averaged with) its probe rewards, on the dev
    sets. Each trained reward is scaled to the spread, over the training responses, of the probe reward it stands
    in for (no labels used); "pair gate" weighs both responses of a pair by the mean of their two gates, so a
    pair is judged by one mixture."""
    import torch

    from labeler.judge.backends.probe import ProbeHead

    t = ProbeHead.load(ROOT / "labeler" / "judge" / "starter").t
    train, dev = load_features(args.features, "train", 8), load_features(args.features, "prefs", 8)
    a_wins = torch.tensor([label == "A" for label in dev["labels"]])

    def spread(w):
        return torch.cat([train["better"], train["worse"]]) / t["scale"] @ w

    def ranked(rewards):  # per response in rows_of order (2i: A, 2i + 1: B) -> better, worse by the human label
        return torch.where(a_wins, rewards[0::2], rewards[1::2]), torch.where(a_wins, rewards[1::2], rewards[0::2])

    help_std, safety_std = float(spread(t["w_help"]).std()), float(spread(t["w_safety"]).std())
    saved = torch.load(args.rewards)
    top_help = ranked(saved["prefs"] * help_std / float(saved["train"].std()))
    top_safety = None
    if args.safety_rewards:
        saved = torch.load(args.safety_rewards)
        top_safety = ranked(saved["prefs"] * safety_std / float(saved["train"].std()))
    probe, variants = {}, {}
    for side, h in zip((0, 1), (dev["better"], dev["worse"])):
        z = h / t["scale"]
        gate = torch.sigmoid(((h - t["mu"]) / t["sd"]) @ t["u"] + t["c"])
        probe[side] = {"gate": gate, "help": z @ t["w_help"], "safety": z @ t["w_safety"]}
    pair_gate = (probe[0]["gate"] + probe[1]["gate"]) / 2
    for side in (0, 1):
        p, th = probe[side], top_help[side]
        rows = {"starter (shipped)": p["gate"] * p["safety"] + (1 - p["gate"]) * p["help"],
                "starter, pair gate": pair_gate * p["safety"] + (1 - pair_gate) * p["help"],
                "trained reward alone": th,
                "pair gate: probe safety / trained": pair_gate * p["safety"] + (1 - pair_gate) * th,
                "pair gate: probe safety / (trained + probe help)":
                    pair_gate * p["safety"] + (1 - pair_gate) * (th + p["help"]) / 2}
        if top_safety is not None:
            ts = top_safety[side]
            rows.update({"trained safety alone": ts,
                         "pair gate: trained safety / trained": pair_gate * ts + (1 - pair_gate) * th,
                         "pair gate: (trained + probe) safety / (trained + probe) help":
                             pair_gate * (ts + p["safety"]) / 2 + (1 - pair_gate) * (th + p["help"]) / 2})
        for name, r in rows.items():
            variants.setdefault(name, []).append(r)
    result = {"command": " ".join(sys.argv), "variants": {}}
    for name, (better, worse) in variants.items():
        result["variants"][name] = table = macro((better > worse).tolist(), dev["source"])
        print(f"{name}: macro {table['macro']:.1%} "
              + " ".join(f"{s} {v['agreement']:.1%}" for s, v in table["by_source"].items()))
    out = ROOT / "benchmarks" / "results" / f"top-mix-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return result


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("step", choices=["cache", "train", "mix"])
    p.add_argument("--split", choices=["train", "prefs"], default="train")
    p.add_argument("--out", type=Path, default=ROOT.parent / "runs" / "top")
    p.add_argument("--cut", type=int, default=8, help="Blocks run once, frozen (the probe's cut).")
    p.add_argument("--blocks", type=int, default=3, help="Blocks above the cut that are trained.")
    p.add_argument("--tail", type=int, default=64, help="Last positions of each response the trained blocks see.")
    p.add_argument("--max-tokens", type=int, default=320)
    p.add_argument("--pairs", type=int, default=None, help="cache: the first N pairs of the split only (a trial).")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch", type=int, default=16, help="Pairs per step.")
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument("--head-lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sources", type=lambda v: v.split(","), default=None,
                   help="train: fit on these training sources only (comma-separated); held out: all sources.")
    p.add_argument("--save-rewards", type=Path, default=None,
                   help="train: save the trained reward of every train and dev response here (torch.save).")
    p.add_argument("--rewards", type=Path, help="mix: a `train --save-rewards` file, the helpfulness reward.")
    p.add_argument("--safety-rewards", type=Path, default=None, help="mix: one trained on the safety source.")
    p.add_argument("--features", type=Path, default=ROOT.parent / "runs" / "probe" / "feats",
                   help="mix: `probe_judge.py features` of train and prefs (layer 8), for the starter's head.")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    {"cache": cache, "train": train, "mix": mix}[args.step](args)


if __name__ == "__main__":
    main()
