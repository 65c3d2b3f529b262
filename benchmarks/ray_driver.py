"""What the driver of `annotate --ray` costs per 1,000 judgments, beside the same run in one process.

    .venv/bin/python benchmarks/ray_driver.py --pairs 2000 --batch-size 8 --mode cot -k 4 --actors 2

The fake backend judges (it costs next to nothing), so what is left is the driver's own work: with Ray, waiting
for and decoding finished batches and writing them to the store; in one process, judging and writing. Both runs
judge the same pairs into scratch stores; Ray starts (local, `--num-cpus`) before the clock, the actor pool
starts inside it. Prints one JSON line per run and one with the per-1,000-judgment figures side by side.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


class Timed:
    """Adds up the seconds spent in one method of an object."""

    def __init__(self, owner, name: str):
        self.seconds, self._method = 0.0, getattr(owner, name)
        setattr(owner, name, self)

    def __call__(self, *args, **kwargs):
        began = time.perf_counter()
        try:
            return self._method(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - began


def one_run(work: Path, name: str, args, runner=None) -> dict:
    from helpers import write_pairs
    from labeler import pipeline
    from labeler.ingestion import ingest_files
    from labeler.store import FieldMap, Store

    data = write_pairs(work / f"{name}.jsonl", args.pairs)
    with Store(work / f"{name}.duckdb") as store:
        ingest_files(store, [data], FieldMap(), False, 200_000)
        judge = pipeline.judge_for(store, "fake", mode=args.mode, samples=args.samples, batch_size=args.batch_size)
        writes, judging = Timed(store, "save_batch"), Timed(judge, "judge")
        wall, cpu = time.perf_counter(), time.process_time()
        result = pipeline.annotate(store, [], judge, batch_size=args.batch_size, runner=runner)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    row = {"run": name, "judgments": len(result.judged), "wall_s": wall, "driver_cpu_s": cpu,
           "store_write_s": writes.seconds, "judge_in_driver_s": judging.seconds}
    if runner is not None:
        row |= {"fetch_wait_s": runner.fetch_seconds, "decode_s": runner.decode_seconds}
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}))
    return row


def per_thousand(row: dict) -> dict:
    scale = 1000 / row["judgments"]
    return {k: round(v * scale, 3) for k, v in row.items() if k.endswith("_s")}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--mode", default="cot", choices=["direct", "cot"])
    parser.add_argument("-k", "--samples", type=int, default=None, help="Votes per order (cot; default 4).")
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray (default: all).")
    args = parser.parse_args(argv)
    args.samples = args.samples or (4 if args.mode == "cot" else 1)

    import os

    import ray

    from labeler.scale import LOCAL, RayOptions, RayRunner

    began = time.perf_counter()
    ray.init(address=LOCAL, num_cpus=args.num_cpus, include_dashboard=False, logging_level="WARNING")
    ray_init_s = time.perf_counter() - began
    with tempfile.TemporaryDirectory() as tmp:
        here = one_run(Path(tmp), "one_process", args)
        there = one_run(Path(tmp), "ray", args, RayRunner(RayOptions(actors=args.actors)))
    ray.shutdown()
    a, b = per_thousand(here), per_thousand(there)
    summary = {
        "per_1000_judgments": {"one_process": a, "ray": b},
        "ray_driver_cpu_over_one_process_write": round(b["driver_cpu_s"] / a["store_write_s"], 1),
        "ray_store_write_over_one_process_write": round(b["store_write_s"] / a["store_write_s"], 2),
        "ray_init_s": round(ray_init_s, 2), "cpus": os.cpu_count(), "actors": args.actors, "pairs": args.pairs,
        "batch_size": args.batch_size, "mode": args.mode, "k": args.samples,
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
