"""Throughput, side by side in one run: judging (pairs/s and samples/s per mode, both orders) on the same pairs,
and ingest (rows/s and peak RSS) of synthetic JSONL files.

    .venv/bin/python benchmarks/throughput.py                 # 2 pairs, 100k and 1M rows: about 3 min on 2 idle cores
    .venv/bin/python benchmarks/throughput.py --pairs 16 --ingest-rows 100000,1000000,5000000
    .venv/bin/python benchmarks/throughput.py --backend transformers,openai --llama-server --ingest-rows ''

Backends by flag (`--backend transformers|openai|vllm|fake`, comma-separated to compare several on the same pairs
in one run): `--model` is the local model of transformers/vllm; openai judges through `--base-url` (or, with
`--llama-server`, a llama-cpp-python server this script starts on the default model's GGUF) under `--server-model`.

Judge modes: direct (one verdict-token read per order) and cot with K = 1, 4, 8 samples per order; every mode
judges both orders of every pair (as `labeler annotate` does) through `pipeline.annotate` into a scratch store,
after a warm-up call that loads the weights. Ingest runs each size in a fresh subprocess on a fresh store, so
its peak RSS (VmHWM) is that size's alone. Prints ratios (to direct; to the smallest ingest) and writes a
JSON result (default benchmarks/results/throughput-<UTC time>.json). Machine load is recorded: on a shared
box the numbers move with it.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / "examples" / "pairs.jsonl"
PREFS = ROOT.parent / "shared" / "data" / "prefs"
SPEEDUP_KEYS = ("cot_speedup", "cot_agreement_delta", "adaptive_sample_ratio", "adaptive_agreement_delta",
                "direct_speedup", "direct_limit_share", "direct_bf16_speedup", "direct_label_match", "cot_bf16_speedup",
                "adaptive_pairs_ratio")

INGEST_CHILD = """
import json, sys, time
from pathlib import Path
from labeler.ingestion import ingest_files
from labeler.store import Store
path, db = Path(sys.argv[1]), Path(sys.argv[2])
start = time.perf_counter()
with Store(db) as store:
    report = ingest_files(store, [path])[0]
seconds = time.perf_counter() - start
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork + exec, so it would include the parent's model
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"seconds": seconds, "new_pairs": report.counts.new_pairs, "quarantined": report.counts.quarantined,
                  "peak_rss_mb": hwm / 1024}))
"""


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="JSONL of pairs to judge (default: examples/pairs.jsonl).")
    p.add_argument("--pairs", type=int, default=2, help="Pairs judged by every mode (the same pairs).")
    p.add_argument("--ks", default="1,4,8", help="CoT samples per order to measure, comma-separated ('' skips cot).")
    p.add_argument("--no-direct", action="store_true", help="Skip direct mode.")
    p.add_argument("--model", default=None, help="Local HF model dir or cached Hub id (default: the default model).")
    p.add_argument("--backend", default="transformers",
                   help="transformers, openai, vllm or fake; comma-separated to compare them on the same pairs.")
    p.add_argument("--device", default="auto", help="transformers backend: auto, cpu, cuda or cuda:N.")
    p.add_argument("--dtype", default=None, help="transformers backend: float32 or bfloat16 (default: by device).")
    p.add_argument("--base-url", default=None, help="openai backend: the server's API root (e.g. http://127.0.0.1:8080/v1).")
    p.add_argument("--server-model", default="smollm2", help="openai backend: the model name the server serves.")
    p.add_argument("--tokenizer", default="default", help="openai backend: tokenizer whose chat template renders prompts.")
    p.add_argument("--concurrency", type=int, default=8, help="openai backend: requests in flight.")
    p.add_argument("--llama-server", action="store_true",
                   help="openai backend without --base-url: start llama-cpp-python's server on the default GGUF "
                        "(benchmarks/llama_server.py) with as many threads as torch uses.")
    p.add_argument("--batch-size", type=int, default=8, help="Pairs per batch.")
    p.add_argument("--max-new-tokens", type=int, default=256, help="CoT rationale length limit.")
    p.add_argument("--ingest-rows", default="100000,1000000", help="Synthetic ingest sizes, comma-separated ('' skips).")
    p.add_argument("--out", type=Path, default=None, help="JSON result file.")
    p.add_argument("--speedups", action="store_true",
                   help="Also measure, on human-labelled pairs: cot K=8 against a naive generate-per-sample loop, "
                        "adaptive voting against fixed K, direct against one-at-a-time and the compute limit.")
    p.add_argument("--speedup-data", type=Path, default=PREFS / "hh_helpful.jsonl",
                   help="Human-labelled JSONL for --speedups (default: ../shared/data/prefs/hh_helpful.jsonl).")
    p.add_argument("--speedup-pairs", type=int, default=8, help="Pairs for --speedups (the first N).")
    p.add_argument("--speedup-k", type=int, default=8, help="Samples per order for --speedups.")
    p.add_argument("--match-pairs", type=int, default=0,
                   help="With --speedups: direct labels of bfloat16, bf16 autocast and int8 against float32 on this "
                        "many dev pairs (an equal share of each ../shared/data/prefs file; 300 in the README).")
    return p


def judge_throughput(args: argparse.Namespace) -> list[dict]:
    results = []
    for name in [b.strip() for b in args.backend.split(",") if b.strip()]:
        if name == "openai" and not args.base_url and args.llama_server:
            import torch
            from llama_server import llama_server

            with llama_server(threads=torch.get_num_threads(), n_ctx=8192) as url:
                results += backend_throughput(args, name, url)
        else:
            results += backend_throughput(args, name, args.base_url)
    return results


def make_judge_backend(args: argparse.Namespace, name: str, base_url: str | None):
    from labeler.judge.backends import make_backend

    if name == "openai":
        return make_backend(name, model=args.server_model, base_url=base_url, tokenizer=args.tokenizer,
                            concurrency=args.concurrency)
    return make_backend(name, model=args.model, batch_size=args.batch_size, device=args.device, dtype=args.dtype)


def backend_throughput(args: argparse.Namespace, backend_name: str, base_url: str | None) -> list[dict]:
    from labeler import pipeline
    from labeler.ingestion import ingest_files
    from labeler.judge.judge import Judge, JudgeConfig
    from labeler.store import Store

    configs = [] if args.no_direct else [("direct", JudgeConfig(mode="direct"))]
    configs += [(f"cot K={k}", JudgeConfig(mode="cot", samples=k, max_new_tokens=args.max_new_tokens))
                for k in _ints(args.ks)]
    if not configs:
        return []
    backend = make_judge_backend(args, backend_name, base_url)
    print(f"backend {backend_name}", file=sys.stderr, flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "pairs.jsonl"
        lines = [line for line in args.data.read_text().splitlines() if line.strip()][: args.pairs]
        if len(lines) < args.pairs:
            print(f"note: {args.data} has only {len(lines)} pairs", file=sys.stderr)
        data.write_text("\n".join(lines) + "\n")
        with Store(Path(tmp) / "bench.duckdb") as store:
            ingest_files(store, [data])
            ids = [p.pair_id for p in store.pending_pairs("-")]
            warm = Judge(backend, JudgeConfig(mode="direct", seed=-1))  # loads the weights; not timed
            pipeline.annotate(store, [], warm, pair_ids=ids[:1])
            if not args.no_direct:
                results.extend(one_order(backend, store.pending_pairs("-", pair_ids=ids)))
            for name, config in configs:
                judge = Judge(backend, config)
                print(f"judging {len(ids)} pairs: {name} ...", file=sys.stderr, flush=True)
                result = pipeline.annotate(store, [], judge, batch_size=args.batch_size, pair_ids=ids)
                n_samples = sum(j.votes_a + j.votes_b + j.abstained for j in result.judged)  # one per sample
                results.append({"mode": name, "pairs": len(result.judged), "samples": n_samples,
                                "labels": {j.pair_id: j.label for j in result.judged},
                                "p_a": {j.pair_id: j.p_a for j in result.judged},
                                "seconds": result.seconds, "pairs_per_s": len(result.judged) / result.seconds,
                                "samples_per_s": n_samples / result.seconds})
                print(f"  {results[-1]['pairs_per_s']:.3f} pairs/s, {results[-1]['samples_per_s']:.2f} samples/s",
                      file=sys.stderr)
        model_id = backend.model_id
    for r in results:
        r["model_id"], r["backend"] = model_id, backend_name
    return results


def one_order(backend, pairs) -> list[dict]:
    """Direct verdict reads straight through the backend (no store), one order vs both: the cost of the swap."""
    from labeler.judge.judge import CHOICES
    from labeler.judge.prompts import render

    rows = []
    for name, positions in (("backend AB only", ("AB",)), ("backend AB+BA", ("AB", "BA"))):
        prompts = [backend.render_chat(*vars(render("direct", pair, pos)).values()) for pair in pairs for pos in positions]
        print(f"judging {len(pairs)} pairs: direct, {name} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        backend.verdict_logprobs(prompts, CHOICES)
        seconds = time.perf_counter() - start
        rows.append({"mode": name, "pairs": len(pairs), "samples": len(prompts), "seconds": seconds,
                     "pairs_per_s": len(pairs) / seconds, "samples_per_s": len(prompts) / seconds})
    return rows


def write_synthetic(path: Path, rows: int) -> None:
    """Realistic-length rows (about 600 bytes each), every 1,000th one bad so quarantine is exercised."""
    filler = "The answer considers the question carefully and explains each step in plain words. " * 2
    with path.open("w") as f:
        for i in range(rows):
            if i % 1000 == 999:
                f.write('{"prompt": "broken row", "response_a": 3}\n')
                continue
            f.write(json.dumps({"id": f"s{i}", "prompt": f"Question {i}: how does item {i % 97} work?",
                                "response_a": f"A{i}. {filler}", "response_b": f"B{i}. {filler[::-1]}",
                                "label": "AB"[i % 2], "source": "synthetic"}) + "\n")


def ingest_throughput(args: argparse.Namespace) -> list[dict]:
    results = []
    for rows in _ints(args.ingest_rows):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"synthetic-{rows}.jsonl"
            write_synthetic(path, rows)
            print(f"ingesting {rows:,} rows ({path.stat().st_size / 1e6:.0f} MB) ...", file=sys.stderr, flush=True)
            child = subprocess.run([sys.executable, "-c", INGEST_CHILD, str(path), str(Path(tmp) / "ingest.duckdb")],
                                   capture_output=True, text=True, cwd=ROOT)
            if child.returncode != 0:
                raise SystemExit(f"ingest of {rows} rows failed:\n{child.stderr}")
            r = json.loads(child.stdout.strip().splitlines()[-1])
            results.append({"rows": rows, "file_mb": path.stat().st_size / 1e6, **r, "rows_per_s": rows / r["seconds"]})
            print(f"  {results[-1]['rows_per_s']:,.0f} rows/s, peak RSS {r['peak_rss_mb']:.0f} MB", file=sys.stderr)
    return results


def ratios(judge: list[dict], ingest: list[dict]) -> dict:
    out = {}
    backends = list(dict.fromkeys(r["backend"] for r in judge))
    for backend in backends:
        prefix = f"{backend}: " if len(backends) > 1 else ""
        modes = {r["mode"]: r for r in judge if r["backend"] == backend}
        if "backend AB only" in modes:
            one, both = modes["backend AB only"], modes["backend AB+BA"]
            out[f"{prefix}direct both orders / one order seconds per pair"] = one["pairs_per_s"] / both["pairs_per_s"]
        base = modes.get("direct")
        for r in modes.values():
            if base and r is not base and not r["mode"].startswith("backend"):
                out[f"{prefix}{r['mode']} / direct seconds per pair"] = base["pairs_per_s"] / r["pairs_per_s"]
                out[f"{prefix}{r['mode']} / direct samples per second"] = r["samples_per_s"] / base["samples_per_s"]
    out.update(across_backends(judge, backends, "pairs_per_s"))
    if ingest:
        first = ingest[0]
        for r in ingest[1:]:
            out[f"ingest {r['rows']:,} / {first['rows']:,} rows per second"] = r["rows_per_s"] / first["rows_per_s"]
            out[f"ingest {r['rows']:,} / {first['rows']:,} peak RSS"] = r["peak_rss_mb"] / first["peak_rss_mb"]
    return out


def across_backends(judge: list[dict], backends: list[str], key: str) -> dict:
    """Each mode of every later backend against the first backend's same mode: `key` ratio."""
    out = {}
    first = {r["mode"]: r for r in judge if r["backend"] == backends[0]} if backends else {}
    for r in judge:
        base = first.get(r["mode"])
        if r["backend"] != backends[0] and base and not r["mode"].startswith("backend"):
            out[f"{r['mode']}: {r['backend']} / {backends[0]} pairs per second"] = r[key] / base[key]
    return out


def label_agreement(judge: list[dict]) -> dict:
    """Per mode, the share of pairs on which each later backend gave the first backend's label."""
    backends = list(dict.fromkeys(r["backend"] for r in judge))
    first = {r["mode"]: r for r in judge if backends and r["backend"] == backends[0] and "labels" in r}
    out = {}
    for r in judge:
        base = first.get(r["mode"])
        if r["backend"] != backends[0] and base and "labels" in r:
            same = [base["labels"][p] == label for p, label in r["labels"].items() if p in base["labels"]]
            diffs = [abs(p_a - base["p_a"][p]) for p, p_a in r["p_a"].items()
                     if p_a is not None and base["p_a"].get(p) is not None]
            out[f"{r['mode']}: {r['backend']} vs {backends[0]}"] = {
                "pairs": len(same), "same_label": sum(same),
                "mean_abs_p_a_diff": sum(diffs) / len(diffs) if diffs else None, "max_abs_p_a_diff": max(diffs, default=None)}
    return out


def main(args: argparse.Namespace) -> dict:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    load_before = os.getloadavg()
    started = time.perf_counter()
    judge, ingest = judge_throughput(args), ingest_throughput(args)
    speed = speedup_section(args) if args.speedups else {}
    result = {
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
                    "torch": torch.__version__, "load_avg_before": load_before, "load_avg_after": os.getloadavg()},
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "judge": judge, "ingest": ingest, "ratios": ratios(judge, ingest), "label_agreement": label_agreement(judge),
        "speedups": speed,
        "total_seconds": time.perf_counter() - started,
    }
    _print(result)
    out = args.out or ROOT / "benchmarks" / "results" / f"throughput-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out}")
    if speed:
        print(json.dumps({k: round(speed[k], 4) for k in SPEEDUP_KEYS}))
    return result


def speedup_section(args: argparse.Namespace) -> dict:
    from judge_speed import labelled_pairs, speedups

    from labeler.judge.backends import make_backend

    pairs, gold = labelled_pairs(args.speedup_data, args.speedup_pairs)
    backend = make_backend("transformers", model=str(args.model) if args.model else None, batch_size=args.batch_size)
    backend.load()
    print(f"speedups on {len(pairs)} pairs of {args.speedup_data.name}, K={args.speedup_k} ...", file=sys.stderr)
    out = speedups(backend, pairs, gold, args.speedup_k, args.max_new_tokens, args.batch_size)
    if args.match_pairs:
        from judge_speed import dev_pairs, dtype_label_match

        pairs, gold = dev_pairs(args.match_pairs)
        print(f"dtype label match on {len(pairs)} dev pairs ...", file=sys.stderr)
        out["dtype_label_match"] = dtype_label_match(backend, pairs, gold, args.batch_size)
    return out


def _print(result: dict) -> None:
    if result["judge"]:
        print(f"\njudge ({', '.join(dict.fromkeys(r['model_id'] for r in result['judge']))}, both orders)")
        print(f"{'backend':<13} {'mode':<16} {'pairs':>5} {'samples':>7} {'seconds':>8} {'pairs/s':>8} {'samples/s':>9}")
        for r in result["judge"]:
            print(f"{r['backend']:<13} {r['mode']:<16} {r['pairs']:>5} {r['samples']:>7} {r['seconds']:>8.1f}"
                  f" {r['pairs_per_s']:>8.3f} {r['samples_per_s']:>9.2f}")
        for name, a in result["label_agreement"].items():
            diff = f"; |P(A) difference| mean {a['mean_abs_p_a_diff']:.4f}, max {a['max_abs_p_a_diff']:.4f}" \
                if a["mean_abs_p_a_diff"] is not None else ""
            print(f"same label, {name}: {a['same_label']} of {a['pairs']} pairs{diff}")
    if result["ingest"]:
        print(f"\n{'ingest rows':>12} {'MB':>6} {'seconds':>8} {'rows/s':>10} {'peak RSS MB':>11}")
        for r in result["ingest"]:
            print(f"{r['rows']:>12,} {r['file_mb']:>6.0f} {r['seconds']:>8.1f} {r['rows_per_s']:>10,.0f}"
                  f" {r['peak_rss_mb']:>11.0f}")
    print("\nratios")
    for name, value in result["ratios"].items():
        print(f"  {name}: {value:.2f}x")
    m = result["machine"]
    print(f"\n{m['cpus']} CPUs, {m['torch_threads']} torch threads, load average {m['load_avg_before'][0]:.1f} before, "
          f"{m['load_avg_after'][0]:.1f} after")


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


if __name__ == "__main__":
    main(make_parser().parse_args())
