"""Can genrm-sft learn at all? Train it on a few training pairs (both orders) for many epochs and measure its
agreement on those same pairs after each epoch: a 135M model must be able to memorise 64 pairs.

    nice -n 19 .venv/bin/python benchmarks/genrm_memorise.py --pairs 64 --epochs 30 --threads 2 --out runs/memorise

The pairs are the first `--pairs` of the seed-0 shuffle of ../shared/data/train whose direct prompt has at most
`--max-tokens` tokens (short ones keep the run cheap on a 2-core CPU). Training is `trainer/verdict.py` exactly as
`labeler retrain --method genrm-sft` runs it (`--train-layers`, `--lr`, `--lora-r`, `--bf16` change its config).
An "epoch" is one pass of `--pairs` rows (verdict.py shows each pair in one order per epoch, the other order the
next). Each epoch records how many of the rows it trained on the model already got right before their step
(free: read from the training forward pass); every `--eval-every` epochs and at the end, every pair is read in both
orders (128 prompts for 64 pairs) with the model being trained, in eval mode: agreement per prompt (the gold letter
gets more probability than the other) and per pair (P(A) averaged over the two orders, as the judge pools it), and the mean verdict-token loss. At the end the adapter is saved and
the same pairs are judged by the real judge (`Judge` on the transformers backend, direct mode), which must agree
with the last in-training measurement: if it does not, training and judging read the model differently.
Writes benchmarks/results/genrm-memorise-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT.parent / "shared" / "data" / "train"


def sample_pairs(judge, n: int, max_tokens: int) -> list:
    from schemas import GoldPair, Pair
    from trainer.star import direct_prompt

    rows = [json.loads(line) for f in sorted(TRAIN.glob("*.jsonl")) for line in f.read_text().splitlines() if line]
    random.Random(0).shuffle(rows)
    tok = judge.backend.tokenizer
    out = []
    for r in rows:
        gold = GoldPair(pair=Pair(pair_id=r["id"], prompt=r["prompt"], response_a=r["response_a"],
                                  response_b=r["response_b"], source=r["source"]), label=r["label"], prompt_hash=r["id"])
        if all(len(tok.encode(direct_prompt(judge, gold, pos), add_special_tokens=False)) <= max_tokens
               for pos in ("AB", "BA")):
            out.append(gold)
        if len(out) == n:
            return out
    raise SystemExit(f"only {len(out)} training pairs have direct prompts of <= {max_tokens} tokens")


def read_agreement(model, tokenizer, rows, batch_size: int = 16) -> dict:
    """Agreement of the model being trained on `rows` (both orders of each pair), as the verdict loss reads it."""
    import torch

    from trainer.verdict import LeftPadCollator, encode_rows

    encoded = encode_rows(rows, tokenizer)
    letter_ids = [tokenizer.encode(c, add_special_tokens=False)[0] for c in ("A", "B")]
    collate = LeftPadCollator(tokenizer.pad_token_id)
    was_training = model.training
    model.eval()
    gold_lp, a_lp, b_lp = [], [], []
    with torch.no_grad():
        for lo in range(0, len(encoded), batch_size):
            batch = collate(encoded[lo : lo + batch_size])
            labels = batch.pop("labels")
            logp = torch.log_softmax(model(**batch, logits_to_keep=1).logits[:, -1].float(), dim=-1)
            gold_lp += logp.gather(1, labels[:, None])[:, 0].tolist()
            a_lp += logp[:, letter_ids[0]].tolist()
            b_lp += logp[:, letter_ids[1]].tolist()
    model.train(was_training)
    return summarise(rows, a_lp, b_lp, gold_lp)


def summarise(rows, a_lp, b_lp, gold_lp=None) -> dict:
    """Per-prompt and per-pair agreement from the A/B log-probs of each row (rows hold the gold letter as seen)."""
    p_a_orig: dict[str, list[float]] = {}
    gold_orig: dict[str, str] = {}
    right = 0
    for row, la, lb in zip(rows, a_lp, b_lp):
        seen = row.chosen[0]
        right += (la > lb) == (seen == "A")
        p_a = 1 / (1 + math.exp(min(lb - la, 700)))  # P(shown A), renormalised over {A, B}
        p_a_orig.setdefault(row.pair_id, []).append(p_a if row.position == "AB" else 1 - p_a)
        gold_orig[row.pair_id] = seen if row.position == "AB" else {"A": "B", "B": "A"}[seen]
    pair_right = sum((sum(v) / len(v) > 0.5) == (gold_orig[pid] == "A") for pid, v in p_a_orig.items())
    out = {"prompt_agreement": right / len(rows), "pair_agreement": pair_right / len(p_a_orig),
           "a_rate": sum(la > lb for la, lb in zip(a_lp, b_lp)) / len(rows)}
    if gold_lp is not None:
        out["verdict_loss"] = -sum(gold_lp) / len(gold_lp)
    return out


def judge_agreement(adapter: Path, golds, rows) -> dict:
    """The same pairs judged by the real judge with the saved adapter (the path `labeler annotate` takes)."""
    from labeler.judge.backends import make_backend
    from labeler.judge.judge import Judge, JudgeConfig

    judge = Judge(make_backend("transformers", model=str(adapter), dtype="float32"), JudgeConfig())
    _, samples = judge.judge([g.pair for g in golds], run_id="memorise")
    by_key = {(s.pair_id, s.position): s for s in samples}
    ordered = [by_key[(r.pair_id, r.position)] for r in rows]
    # a Sample holds the log-probs of the original A and B; summarise wants them as shown in the row's order
    shown = [(s.logprob_a, s.logprob_b) if r.position == "AB" else (s.logprob_b, s.logprob_a)
             for r, s in zip(rows, ordered)]
    return summarise(rows, [a for a, _ in shown], [b for _, b in shown])


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=64)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--max-tokens", type=int, default=400, help="Longest direct prompt (tokens) a sampled pair may have.")
    p.add_argument("--train-layers", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--lora-r", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--warmup-steps", type=int, default=20)
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (slow on CPUs without avx512_bf16/AMX)")
    p.add_argument("--eval-every", type=int, default=5, help="Read all pairs in both orders every N epochs (and at the end).")
    p.add_argument("--stop-at", type=float, default=1.0, help="Stop once per-prompt agreement reaches this.")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("runs/memorise"))
    args = p.parse_args(argv)

    import torch
    from transformers import TrainerCallback

    from labeler.judge.backends import make_backend
    from labeler.judge.backends.models import default_model_dir
    from labeler.judge.judge import Judge, JudgeConfig
    from trainer import star as star_data
    from trainer import verdict
    from trainer.common import StartPoint
    from trainer.config import VerdictTrainConfig

    torch.set_num_threads(args.threads)
    base = default_model_dir()
    judge = Judge(make_backend("transformers", model=str(base), dtype="float32"), JudgeConfig())
    judge.backend.load()
    golds = sample_pairs(judge, args.pairs, args.max_tokens)
    rows = star_data.genrm_rows(judge, golds)
    extra = {"lora_r": args.lora_r, "lora_alpha": 2 * args.lora_r} if args.lora_r else {}
    cfg = VerdictTrainConfig(num_train_epochs=args.epochs, learning_rate=args.lr, train_layers=args.train_layers,
                             per_device_train_batch_size=args.batch_size, warmup_steps=args.warmup_steps,
                             bf16=args.bf16, save_steps=10**9, logging_steps=10**9, **extra)
    steps_per_epoch = math.ceil(args.pairs / args.batch_size)
    history: list[dict] = []
    started = time.perf_counter()
    seen_right: list[bool] = []  # per row trained on this epoch: did the gold letter beat the other, before the step
    letters: list[int] = []
    plain_loss = verdict.verdict_loss

    def recording_loss(model, inputs, return_outputs=False):
        labels = inputs["labels"]
        loss, outputs = plain_loss(model, inputs, return_outputs=True)
        logits = outputs.logits[:, -1].detach().float()
        other = torch.where(labels == letters[0], letters[1], letters[0])
        seen_right.extend((logits.gather(1, labels[:, None]) > logits.gather(1, other[:, None]))[:, 0].tolist())
        return (loss, outputs) if return_outputs else loss

    verdict.verdict_loss = recording_loss  # the same loss; it also notes what the step saw

    class EveryEpoch(TrainerCallback):
        def on_step_end(self, targs, state, control, model=None, processing_class=None, **kwargs):
            if state.global_step % steps_per_epoch:
                return
            epoch = state.global_step // steps_per_epoch
            point = {"epoch": epoch, "step": state.global_step, "seconds": round(time.perf_counter() - started, 1),
                     "rows_seen_right_before_step": sum(seen_right) / len(seen_right)}
            seen_right.clear()
            last = state.global_step >= state.max_steps
            if epoch % args.eval_every == 0 or last or point["rows_seen_right_before_step"] >= args.stop_at:
                point |= read_agreement(model, tokenizer, rows)
                if point["prompt_agreement"] >= args.stop_at:
                    control.should_training_stop = True
            history.append(point)
            print(json.dumps(point), flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    trainer = verdict.make_trainer(StartPoint.of(base), rows, cfg, args.out / "checkpoints", quiet=True,
                                   callbacks=[EveryEpoch()])
    tokenizer = trainer.processing_class
    letters += [tokenizer.encode(c, add_special_tokens=False)[0] for c in ("A", "B")]
    history.append({"epoch": 0, "step": 0, "seconds": 0.0, **read_agreement(trainer.model, tokenizer, rows)})
    print(json.dumps(history[-1]), flush=True)
    trainer.train()
    if "prompt_agreement" not in history[-1]:
        history[-1] |= read_agreement(trainer.model, tokenizer, rows)
        print(json.dumps(history[-1]), flush=True)
    adapter = args.out / "adapter"
    trainer.model.save_pretrained(str(adapter))
    tokenizer.save_pretrained(str(adapter))
    final = judge_agreement(adapter, golds, rows)
    print("judged by the real judge:", json.dumps(final), flush=True)
    result = {"args": {k: str(v) for k, v in vars(args).items()}, "config": vars(cfg) | {},
              "pairs": [g.pair.pair_id for g in golds], "history": history, "judged": final}
    stamp = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"
    path = ROOT / "benchmarks" / "results" / f"genrm-memorise-{stamp}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    sys.exit(main() and 0)
