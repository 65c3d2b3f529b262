"""Where the time of a genrm-sft training step goes, side by side on the same real batches (not a timed test).

    .venv/bin/python benchmarks/train_speed.py                 # default model, 3 batches of 16 rows per setting

Each setting trains the default model for the same batches of real judge prompts (first rows of
`../shared/data/train/hh_helpful.jsonl`, both orders, length-grouped) and reports tokens/s, rows/s and the share of
the matmul peak of the dtype it computes in (fp32 or bf16, both measured in the same run). FLOPs per token are
counted as 6 x the parameters that train and pass gradients back (forward + backward) plus 2 x the frozen ones
below them (forward only), i.e. what the step has to do, not what the kernels happen to do. Prints one JSON line.
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

SETTINGS = {  # name -> VerdictTrainConfig overrides, logits of every position?
    "fp32, LoRA top 8, verdict logits": ({"bf16": False}, False),
    "bf16, LoRA top 8, verdict logits (default)": ({}, False),
    "bf16, LoRA top 8, all logits": ({}, True),
    "bf16, LoRA top 4, verdict logits": ({"train_layers": 4}, False),
    "bf16, LoRA all 30 blocks, verdict logits": ({"train_layers": 0}, False),
    "bf16, full top 8, verdict logits": ({"full": True, "learning_rate": 1e-5}, False),
}


def matmul_peak(dtype, seconds: float = 1.0) -> float:
    """GFLOP/s of a (512 x 576) @ (576 x 1536) matmul, the shape of the model's MLP at batch scale."""
    import torch

    a, b = torch.randn(512, 576, dtype=dtype), torch.randn(576, 1536, dtype=dtype)
    for _ in range(5):
        a @ b
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    return n * 2 * 512 * 576 * 1536 / (time.perf_counter() - start) / 1e9


def batches(tokenizer, judge, n_batches: int, size: int):
    from judge_speed import labelled_pairs

    from schemas import GoldPair
    from trainer import star, verdict

    pairs, labels = labelled_pairs(ROOT.parent / "shared/data/train/hh_helpful.jsonl", n_batches * size)
    gold = [GoldPair(pair=p, label=label, prompt_hash=p.pair_id) for p, label in zip(pairs, labels)]
    rows = star.genrm_rows(judge, gold)
    encoded = sorted(verdict.encode_rows(verdict.epoch_rows(rows, 1, 0), tokenizer), key=lambda r: r["length"])
    collate = verdict.LeftPadCollator(tokenizer.pad_token_id)
    return [collate(encoded[i:i + size]) for i in range(0, len(encoded), size)][:n_batches]


def step_flops(model, tokens: int, train_layers: int, full: bool) -> float:
    n_layers = model.config.num_hidden_layers
    first = n_layers - train_layers if train_layers else 0
    per_block = sum(p.numel() for p in model.get_decoder().layers[0].parameters())
    return tokens * per_block * (2 * first + 6 * (n_layers - first))


def measure(name: str, overrides: dict, all_logits: bool, data, start) -> dict:
    import torch

    from trainer import verdict
    from trainer.common import load_policy
    from trainer.config import VerdictTrainConfig

    cfg = VerdictTrainConfig(**overrides)
    model = load_policy(start, cfg)
    if not cfg.full:
        from peft import get_peft_model

        model = get_peft_model(model, verdict.top_layer_lora(model, cfg))
    else:
        verdict.freeze_below(model, model.config.num_hidden_layers - cfg.train_layers)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.learning_rate)
    times, tokens, rows = [], 0, 0
    for i, batch in enumerate([data[0], *data]):  # the first pass warms up and is not timed
        batch = dict(batch)
        began = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            if all_logits:
                labels = batch.pop("labels")
                logits = model(**batch).logits[:, -1].float()
                loss = torch.nn.functional.cross_entropy(logits, labels)
            else:
                loss = verdict.verdict_loss(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if i:
            times.append(time.perf_counter() - began)
            tokens += int(batch["attention_mask"].sum())
            rows += batch["input_ids"].shape[0]
    seconds = sum(times)
    flops = step_flops(model, tokens, cfg.train_layers, cfg.full)
    return {"setting": name, "dtype": "bf16" if cfg.bf16 else "fp32", "tokens_per_s": tokens / seconds,
            "rows_per_s": rows / seconds, "gflops": flops / seconds / 1e9}


def main(argv: list[str] | None = None) -> None:
    import torch

    from labeler.judge.backends import make_backend
    from labeler.judge.backends.models import default_model_dir
    from labeler.judge.judge import Judge, JudgeConfig
    from trainer.common import StartPoint, quiet_transformers

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--settings", default=",".join(str(i) for i in range(len(SETTINGS))),
                        help="Indexes of SETTINGS to run (default: all).")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    quiet_transformers()
    start = StartPoint.of(default_model_dir())
    judge = Judge(make_backend("transformers"), JudgeConfig())
    data = batches(judge.backend.tokenizer, judge, args.batches, args.batch_size)
    peak = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    print(f"matmul peak: fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.0f} GFLOP/s ({args.threads} threads)")
    results = []
    chosen = [list(SETTINGS.items())[int(i)] for i in args.settings.split(",")]
    for name, (overrides, all_logits) in chosen:
        r = measure(name, overrides, all_logits, data, start)
        r["peak_share"] = r["gflops"] / peak[r["dtype"]]
        results.append(r)
        print(f"{name:45s} {r['tokens_per_s']:7.0f} tok/s {r['rows_per_s']:6.2f} rows/s "
              f"{r['gflops']:6.0f} GFLOP/s = {r['peak_share']:.0%} of the {r['dtype']} peak", flush=True)
    print(json.dumps({"peak_gflops": peak, "threads": args.threads, "batches": args.batches,
                      "batch_size": args.batch_size, "results": results}))


if __name__ == "__main__":
    main()
