"""Ingest throughput per input layout, side by side on the same pairs: ours (validated in DuckDB only) against the
layouts converted in Python first (TRL explicit prompt, HH transcripts, message lists, UltraFeedback), and JSONL
against Parquet and a `datasets` folder. Prints rows/s and each one's ratio to ours-JSONL.

    .venv/bin/python benchmarks/ingest_layouts.py --rows 20000
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

FILLER = "The answer considers the question carefully and explains each step in plain words. " * 2


def rows_for(layout: str, n: int) -> list[dict]:
    out = []
    for i in range(n):
        q, good, bad = f"Question {i}: how does item {i % 97} work?", f"A{i}. {FILLER}", f"B{i}. {FILLER[::-1]}"
        out.append({
            "ours": {"prompt": q, "response_a": good, "response_b": bad, "label": "A"},
            "trl": {"prompt": q, "chosen": good, "rejected": bad},
            "hh": {"chosen": f"\n\nHuman: {q}\n\nAssistant: {good}", "rejected": f"\n\nHuman: {q}\n\nAssistant: {bad}"},
            "messages": {"prompt": [{"role": "user", "content": q}], "chosen": [{"role": "assistant", "content": good}],
                         "rejected": [{"role": "assistant", "content": bad}]},
            "ultrafeedback": {"prompt": q, "completions": [{"response": good, "overall_score": 8.0},
                                                           {"response": bad, "overall_score": 3.0}]},
        }[layout])
    return out


def timed_ingest(tmp: Path, name: str, source: Path) -> dict:
    from labeler.ingestion import ingest_files
    from labeler.store import Store

    with Store(tmp / f"{name}.duckdb") as store:
        start = time.perf_counter()
        (report,) = ingest_files(store, [source])
        seconds = time.perf_counter() - start
    return {"input": name, "layout": report.layout, "pairs": report.counts.new_pairs, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    args = parser.parse_args()
    import datasets

    datasets.disable_progress_bars()
    results = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for layout in ("ours", "trl", "hh", "messages", "ultrafeedback"):
            path = tmp / f"{layout}.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in rows_for(layout, args.rows)))
            results.append(timed_ingest(tmp, f"{layout} jsonl", path))
        ours = datasets.Dataset.from_list(rows_for("ours", args.rows))
        ours.to_parquet(tmp / "ours.parquet")
        ours.save_to_disk(tmp / "ours_ds")
        results.append(timed_ingest(tmp, "ours parquet", tmp / "ours.parquet"))
        results.append(timed_ingest(tmp, "ours datasets folder", tmp / "ours_ds"))
    base = results[0]["pairs"] / results[0]["seconds"]
    print(f"{'input':24} {'layout':14} {'pairs':>7} {'rows/s':>9} {'vs ours jsonl':>14}")
    for r in results:
        rate = r["pairs"] / r["seconds"]
        print(f"{r['input']:24} {r['layout']:14} {r['pairs']:>7} {rate:>9,.0f} {rate / base:>13.2f}x")
    print(json.dumps({"rows": args.rows, "results": results}))


if __name__ == "__main__":
    main()
