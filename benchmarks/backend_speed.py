"""Direct-mode pairs/s of each backend on the same pairs and the same weights (the default model: the transformers
backend on its converted safetensors, the GGUF file in process, and llama-cpp-python's server on that file over
`--api completions` and `--api chat`), and how far the in-process GGUF's P(A) is from the server's on the same file.

    nice -n 19 .venv/bin/python benchmarks/backend_speed.py --pairs 8 --threads 1

Prints one line per backend and the machine's load average, which the timings depend on.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def pairs(n: int):
    from schemas import Pair

    rows = [json.loads(line) for line in (ROOT / "examples" / "pairs.jsonl").read_text().splitlines()[:n]]
    return [Pair(pair_id=str(r["id"]), prompt=r["prompt"], response_a=r["response_a"], response_b=r["response_b"])
            for r in rows]


def timed(backend, items) -> tuple[float, list]:
    from labeler.judge.judge import CHOICES
    from labeler.judge.prompts import render

    backend.load()
    texts = [backend.render_chat(**vars(render("direct", p, pos))) for p in items for pos in ("AB", "BA")]
    backend.verdict_logprobs(texts[:2], CHOICES)  # warm-up
    start = time.perf_counter()
    out = backend.verdict_logprobs(texts, CHOICES)
    return len(items) / (time.perf_counter() - start), out


def p_a(lp) -> float | None:
    return None if lp is None else 1 / (1 + math.exp(lp[1] - lp[0]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    from labeler.judge.backends import make_backend
    from labeler.judge.backends.weights import find_gguf
    from llama_server import MODEL_NAME, llama_server

    torch.set_num_threads(args.threads)
    items = pairs(args.pairs)
    results = {"transformers": timed(make_backend("transformers", device="cpu"), items),
               "gguf in process": timed(make_backend("gguf", model=str(find_gguf()), threads=args.threads), items)}
    with llama_server(threads=args.threads) as url:
        for api in ("completions", "chat"):
            backend = make_backend("openai", model=MODEL_NAME, base_url=url, tokenizer="default", api=api,
                                   concurrency=1)
            results[f"llama.cpp server, --api {api}"] = timed(backend, items)
    for name, (speed, _) in results.items():
        print(f"{name:34s} {speed:6.2f} pairs/s (direct, {args.pairs} pairs, {args.threads} thread(s))")
    ours, theirs = results["gguf in process"][1], results["llama.cpp server, --api completions"][1]
    far = [abs(p_a(a) - p_a(b)) for a, b in zip(ours, theirs) if a is not None and b is not None]
    print(f"gguf in process vs server (completions): max |P(A) diff| {max(far):.4f} over {len(far)} orders")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
